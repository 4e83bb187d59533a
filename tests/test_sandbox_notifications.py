"""The sandbox plays the WeChat user: it delivers ECOMMERCE_ENTRUST notifications exactly as WeChat Pay does.

A tiny HTTP server on loopback stands in for the merchant's site and records what arrives (tests/receiver.py).
Plain pytest: the tests use no Django.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from django_papay import crypto, wechatpay
from django_papay.sandbox import Delivery, OutgoingNotification, Sandbox

from .helpers import APPID, MCHID, PLAN_ID, WECHATPAY_PUBLIC_KEY_ID, Keys, make_sandbox, refused_url, signature_verifies
from .receiver import Receiver
from .sandbox_merchant import PRESIGN_PATH, Merchant

OTHER_APIV3_KEY = "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"
CODE = "C20250101A1"
QUERY_PATH = f"/v3/ecommerce/combine-papay/contracts/plan-id/{PLAN_ID}/out-contract-code/{CODE}"
SITE = "https://papay.example/"
NOTIFY_URL = SITE + "papay/notify/"


# --- the merchant's site and its WeChat Pay -------------------------------------------------


@pytest.fixture(scope="module")
def receiver(keys: Keys) -> Iterator[Receiver]:
    site = Receiver(keys)
    yield site
    site.close()


@pytest.fixture(scope="module")
def running_sandbox(keys: Keys) -> Iterator[Sandbox]:
    with make_sandbox(keys) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: Sandbox, receiver: Receiver) -> Sandbox:
    running_sandbox.reset()
    running_sandbox.notify_rewrite = {SITE: receiver.url + "/"}
    running_sandbox.termination_notify_url = None
    receiver.forget()
    return running_sandbox


def presign(merchant: Merchant, code: str = CODE, **changes: Any) -> None:
    """A real pre-sign, signed by the merchant, so the sandbox knows the contract."""
    response = presign_response(merchant, code, **changes)
    assert response.status_code == 200, response.text


def presign_response(merchant: Merchant, code: str = CODE, **changes: Any) -> requests.Response:
    payload = {
        "appid": APPID,
        "plan_id": PLAN_ID,
        "out_contract_code": code,
        "contract_display_account": "Demo user",
        "notify_url": NOTIFY_URL,
        **changes,
    }
    return merchant.post(payload)


# --- SIGN and TERMINATE as WeChat Pay sends them --------------------------------------------


def test_sign_is_delivered_to_the_rewritten_notify_url_signed_and_sealed(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant, attach="order 42")

    (delivery,) = sandbox.sign_contract(CODE)

    (received,) = receiver.received
    assert received.path == "/papay/notify/"
    assert delivery.status == 204 and delivery.ok and delivery.error == ""
    assert delivery.url == receiver.url + "/papay/notify/"
    assert received.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert received.verifies()
    resource = received.resource()
    assert resource["mchid"] == MCHID
    assert resource["out_contract_code"] == CODE
    assert resource["plan_id"] == PLAN_ID
    assert resource["appid"] == APPID
    assert resource["attach"] == "order 42"
    assert resource["openid"] and "contract_id" not in resource  # the documented SIGN resource has none
    assert sandbox.deliveries == [delivery]


def test_sign_envelope_has_wechat_pay_shape(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)
    sandbox.sign_contract(CODE)

    received = receiver.received[0]
    envelope = received.envelope()
    assert list(envelope) == ["id", "create_time", "resource_type", "event_type", "summary", "resource"]
    assert envelope["event_type"] == "ECOMMERCE_ENTRUST.SIGN"
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["create_time"].endswith("+08:00")
    assert "签约成功".encode() in received.body  # compact UTF-8 JSON, Chinese unescaped
    assert b'": ' not in received.body
    sealed = envelope["resource"]
    assert sealed["original_type"] == "entrust" and sealed["algorithm"] == "AEAD_AES_256_GCM"
    assert sealed["associated_data"] == "entrust"
    assert len(sealed["nonce"]) == 12 and sealed["nonce"].isalnum()


def test_notification_headers_are_what_wechat_pay_sends(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)
    sandbox.sign_contract(CODE)

    headers = receiver.received[0].headers
    assert headers[wechatpay.SIGNATURE_TYPE_HEADER] == "WECHATPAY2-SHA256-RSA2048"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Mozilla/4.0"
    assert headers[wechatpay.REQUEST_ID_HEADER]
    assert crypto.timestamp_is_fresh(headers[wechatpay.TIMESTAMP_HEADER])


def test_sign_times_are_rfc3339_and_the_contract_lasts_five_years(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)

    resource = sandbox.sign_notification(CODE, operate_time=datetime(2024, 2, 29, 9, 30, 5)).resource

    assert resource["operate_time"] == "2024-02-29T09:30:05+08:00"
    assert resource["contract_expired_time"] == "2029-02-28T09:30:05+08:00"
    default = sandbox.sign_notification(CODE).resource
    assert len(default["operate_time"]) == 25 and default["operate_time"].endswith("+08:00")


def test_openid_and_contract_id_are_stable_per_contract(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.notify_contract_id = True
    presign(merchant)
    presign(merchant, code="C20250101B2")

    first, again = sandbox.sign_notification(CODE).resource, sandbox.terminate_notification(CODE).resource
    other = sandbox.sign_notification("C20250101B2").resource

    assert (first["openid"], first["contract_id"]) == (again["openid"], again["contract_id"])
    assert first["openid"] != other["openid"] and first["contract_id"] != other["contract_id"]


def test_sign_without_contract_id_still_gives_the_contract_its_id(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)

    sandbox.sign_contract(CODE)

    assert "contract_id" not in receiver.received[0].resource()
    assert len(merchant.post(path=QUERY_PATH, method="GET").json()["contract_id"]) == 32


def test_notify_contract_id_puts_the_queried_id_into_sign_and_terminate(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.notify_contract_id = True
    presign(merchant)

    signed, ended = sandbox.sign_notification(CODE).resource, sandbox.terminate_notification(CODE).resource

    sandbox.sign_contract(CODE, drop=True)
    assert (
        signed["contract_id"]
        == ended["contract_id"]
        == merchant.post(path=QUERY_PATH, method="GET").json()["contract_id"]
    )


def test_attach_is_left_out_when_the_presign_had_none(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    assert "attach" not in sandbox.sign_notification(CODE).resource


def test_empty_contract_id_leaves_the_field_out(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.notify_contract_id = True
    presign(merchant)
    assert "contract_id" not in sandbox.sign_notification(CODE, contract_id="").resource
    assert "contract_id" not in sandbox.terminate_notification(CODE, contract_id="").resource


def test_resource_overrides_replace_or_remove_fields(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant, attach="order 42")

    notification = sandbox.sign_notification(CODE, plan_id=999, mchid="1900000999", attach=None, openid="oX")

    assert notification.resource["plan_id"] == 999
    assert notification.resource["mchid"] == "1900000999"
    assert notification.resource["openid"] == "oX"
    assert "attach" not in notification.resource


def test_terminate_carries_the_mode(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)

    sandbox.terminate_contract(CODE, mode="MCH_API_TERMINATE")

    received = receiver.received[0]
    assert received.envelope()["event_type"] == "ECOMMERCE_ENTRUST.TERMINATE"
    assert received.envelope()["summary"] == "解约成功"
    resource = received.resource()
    assert resource["contract_termination_mode"] == "MCH_API_TERMINATE"
    assert "contract_expired_time" not in resource
    assert resource["plan_id"] == PLAN_ID and "contract_id" not in resource


def test_terminate_goes_to_the_template_termination_url(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)
    sandbox.termination_notify_url = SITE + "papay/terminated/"

    sandbox.terminate_contract(CODE)
    sandbox.sign_contract(CODE)

    assert [received.path for received in receiver.received] == ["/papay/terminated/", "/papay/notify/"]


def test_an_undelivered_notification_says_how_to_map_it_from_a_shell_too(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    sandbox.notify_rewrite = {}
    (delivery,) = sandbox.sign_contract(CODE)
    assert delivery.status is None and "--notify-rewrite" in delivery.error and "notify_rewrite" in delivery.error


def test_without_a_matching_rewrite_the_url_is_kept(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    sandbox.notify_rewrite = {"https://elsewhere.example/": "http://127.0.0.1:1/"}
    assert sandbox.sign_notification(CODE).url == NOTIFY_URL


def test_contract_signed_through_another_channel_needs_plan_id_appid_and_url(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="plan_id=, appid="):
        sandbox.sign_notification("C20250101Z9")
    nowhere = sandbox.sign_notification("C20250101Z9", plan_id=PLAN_ID, appid=APPID)
    assert nowhere.url == ""  # fine for a test client, but it cannot be delivered
    with pytest.raises(ValueError, match="url="):
        sandbox.deliver(nowhere)

    notification = sandbox.sign_notification("C20250101Z9", plan_id=PLAN_ID, appid=APPID, url=NOTIFY_URL)

    assert notification.resource["plan_id"] == PLAN_ID and notification.resource["appid"] == APPID
    assert notification.url.startswith(sandbox.notify_rewrite[SITE])


# --- redeliveries and timing ----------------------------------------------------------------


def test_repeat_redelivers_the_same_body_with_fresh_signatures(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)

    deliveries = sandbox.sign_contract(CODE, repeat=3)

    assert len(deliveries) == 3 and len({delivery.notification_id for delivery in deliveries}) == 1
    received = receiver.received
    assert len(received) == 3
    assert len({item.body for item in received}) == 1
    assert len({item.headers[wechatpay.NONCE_HEADER] for item in received}) == 3
    assert all(item.verifies() for item in received)
    assert received[0].envelope()["id"] == deliveries[0].notification_id


def test_delayed_delivery_without_waiting_arrives_later(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)

    assert sandbox.sign_contract(CODE, delay=0.3, wait=False) == []
    assert receiver.received == [] and sandbox.deliveries == []

    assert len(receiver.wait_for(1)) == 1
    deadline = time.monotonic() + 2
    while not sandbox.deliveries and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.deliveries[0].ok


def test_reset_cancels_pending_deliveries_and_forgets_past_ones(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)
    sandbox.sign_contract(CODE)
    sandbox.sign_contract(CODE, delay=0.2, wait=False)

    sandbox.reset()
    time.sleep(0.4)

    assert sandbox.deliveries == [] and len(receiver.received) == 1


def test_deliver_out_of_order_sends_the_second_first(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)
    sign, terminate = sandbox.sign_notification(CODE), sandbox.terminate_notification(CODE)

    deliveries = sandbox.deliver_out_of_order(sign, terminate)

    assert [delivery.event_type for delivery in deliveries] == ["ECOMMERCE_ENTRUST.TERMINATE", "ECOMMERCE_ENTRUST.SIGN"]
    assert [item.envelope()["id"] for item in receiver.received] == [terminate.id, sign.id]


def test_signed_again_keeps_the_body_with_a_fresh_nonce(sandbox: Sandbox, merchant: Merchant, keys: Keys) -> None:
    presign(merchant)
    notification = sandbox.sign_notification(CODE, timestamp=int(time.time()) - 600)

    again = notification.signed_again()

    assert again.body == notification.body and again.id == notification.id
    assert again.headers[wechatpay.NONCE_HEADER] != notification.headers[wechatpay.NONCE_HEADER]
    assert crypto.timestamp_is_fresh(again.headers[wechatpay.TIMESTAMP_HEADER])
    assert signature_verifies(again.headers, again.body, keys.wechatpay.public_key())


# --- broken notifications on purpose --------------------------------------------------------


def sign_resource(merchant: Merchant) -> dict[str, Any]:
    presign(merchant)
    return merchant.sandbox.sign_notification(CODE).resource


def test_apiv3_key_override_seals_with_another_key(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    sandbox.deliver(sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), apiv3_key=OTHER_APIV3_KEY))

    received = receiver.received[0]
    assert received.verifies()
    with pytest.raises(crypto.DecryptionError):
        received.resource()
    assert received.resource(OTHER_APIV3_KEY)["out_contract_code"] == CODE


def test_private_key_override_signs_with_another_key(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant, keys: Keys
) -> None:
    sandbox.deliver(sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), private_key=keys.stranger))

    received = receiver.received[0]
    assert received.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert not received.verifies()
    assert received.verifies(keys.stranger.public_key())


def test_serial_override_names_another_key(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    serial = "PUB_KEY_ID_0000000000000000000000000000UNKNOWN"
    sandbox.deliver(sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), serial=serial))
    assert receiver.received[0].headers[wechatpay.SERIAL_HEADER] == serial
    assert receiver.received[0].verifies()


def test_timestamp_override_is_signed_as_given(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    stale = int(time.time()) - 600
    sandbox.deliver(sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), timestamp=stale))
    received = receiver.received[0]
    assert received.headers[wechatpay.TIMESTAMP_HEADER] == str(stale)
    assert received.verifies()


def test_signature_override_sends_a_signtest_probe(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    probe = crypto.SIGNTEST_PREFIX + "bm90IGEgc2lnbmF0dXJl"
    notification = sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), signature=probe)

    sandbox.deliver(notification, repeat=2)  # the probe, then the real notification, as WeChat Pay does

    probe_received, real = receiver.received
    assert probe_received.headers[wechatpay.SIGNATURE_HEADER] == probe and not probe_received.verifies()
    assert real.verifies() and real.body == probe_received.body


def test_body_override_is_sent_and_signed_as_given(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    notification = sandbox.notification("ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), body=b"<xml>not json</xml>")

    sandbox.deliver(notification)

    assert notification.envelope is None and notification.id == ""
    received = receiver.received[0]
    assert received.body == b"<xml>not json</xml>"
    assert received.verifies()


def test_notification_id_and_associated_data_overrides(sandbox: Sandbox, merchant: Merchant, keys: Keys) -> None:
    notification = sandbox.notification(
        "ECOMMERCE_ENTRUST.SIGN", sign_resource(merchant), notification_id="fixed-id", associated_data=""
    )
    assert notification.id == "fixed-id"
    sealed = notification.envelope["resource"]
    assert sealed["associated_data"] == ""
    plaintext = crypto.decrypt(keys.apiv3_key, sealed["nonce"], sealed["ciphertext"], "")
    assert json.loads(plaintext)["out_contract_code"] == CODE


# --- delivery outcomes ----------------------------------------------------------------------


def test_unreachable_receiver_is_a_delivery_without_status(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    sandbox.notify_rewrite = {SITE: refused_url() + "/"}

    (delivery,) = sandbox.sign_contract(CODE)

    assert isinstance(delivery, Delivery)
    assert delivery.status is None and not delivery.ok and delivery.error


def test_receiver_failure_is_recorded_not_raised(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)
    receiver.status = 500
    (delivery,) = sandbox.sign_contract(CODE)
    assert delivery.status == 500 and not delivery.ok


def test_redirects_are_not_followed(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)
    receiver.status = 302
    (delivery,) = sandbox.sign_contract(CODE)
    assert delivery.status == 302 and len(receiver.received) == 1


# --- control endpoints ----------------------------------------------------------------------


def test_control_sign_delivers_without_merchant_authorization(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant, attach="order 42")

    response = requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/sign", timeout=5)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["deliveries"] == [{"status": 204, "error": ""}]
    received = receiver.received[0]
    assert received.envelope()["id"] == answer["notification_id"]
    assert received.verifies() and received.resource()["attach"] == "order 42"
    assert [request.path for request in sandbox.requests] == [PRESIGN_PATH]  # controls are not recorded


def test_control_terminate_takes_mode_and_repeat(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)

    options = {"mode": "WEPAY_WEB_TERMINATE", "repeat": 2}
    response = requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/terminate", json=options, timeout=5)

    assert response.status_code == 200 and len(response.json()["deliveries"]) == 2
    assert [item.resource()["contract_termination_mode"] for item in receiver.received] == ["WEPAY_WEB_TERMINATE"] * 2


def test_sandbox_keeps_serving_while_a_control_request_delivers(
    sandbox: Sandbox, receiver: Receiver, merchant: Merchant
) -> None:
    presign(merchant)
    receiver.call_back = sandbox.url + "/sandbox/contracts"

    response = requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/sign", timeout=5)

    assert response.json()["deliveries"] == [{"status": 204, "error": ""}]
    assert receiver.call_back_statuses == [200]


def test_control_delay_delivers_in_the_background(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)

    response = requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/sign", json={"delay": 0.2}, timeout=5)

    assert response.status_code == 200 and response.json()["deliveries"] == []
    assert receiver.received == []
    assert receiver.wait_for(1)[0].envelope()["id"] == response.json()["notification_id"]


def test_control_for_a_contract_never_presigned_is_resource_not_exists(sandbox: Sandbox) -> None:
    response = requests.post(sandbox.url + "/sandbox/contracts/NEVER1/sign", timeout=5)
    assert response.status_code == 404 and response.json()["code"] == "RESOURCE_NOT_EXISTS"


def test_control_refuses_a_bad_repeat(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    response = requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/sign", json={"repeat": 0}, timeout=5)
    assert response.status_code == 400 and response.json()["code"] == "PARAM_ERROR"


def test_control_takes_no_queued_fault(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    sandbox.fail_next("system_error")

    assert requests.post(sandbox.url + f"/sandbox/contracts/{CODE}/sign", timeout=5).status_code == 200
    assert presign_response(merchant).status_code == 500  # the fault waited for the merchant's next request


def test_control_lists_presigned_contracts(sandbox: Sandbox, receiver: Receiver, merchant: Merchant) -> None:
    presign(merchant)

    contracts = requests.get(sandbox.url + "/sandbox/contracts", timeout=5).json()

    assert [(item["out_contract_code"], item["notify_url"]) for item in contracts] == [(CODE, NOTIFY_URL)]
    assert contracts[0]["delivered_to"] == receiver.url + "/papay/notify/"


def test_outgoing_notification_is_importable_from_the_package(sandbox: Sandbox, merchant: Merchant) -> None:
    presign(merchant)
    assert isinstance(sandbox.sign_notification(CODE), OutgoingNotification)

"""The sandbox's refund endpoints, called with the real client: WeChat Pay's checks and answers."""

import pytest

from django_papay import wechatpay
from django_papay.exceptions import WeChatPayError
from django_papay.models import Deduction
from django_papay.sandbox.state import SandboxState
from django_papay.services import deduct
from django_papay.services.client import get_client

from .helpers import MEMBERSHIP

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(signed_contract, sandbox):
    """A sub-order the sandbox charged (¥15.00)."""
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


def body(sub_order, number="R1", amount=500, **changes):
    return {
        "sub_mchid": sub_order.sub_mchid,
        "sp_appid": "wxd678efh567hg6787",
        "out_trade_no": sub_order.out_trade_no,
        "out_refund_no": number,
        "amount": {"refund": amount, "total": sub_order.amount, "currency": "CNY"},
        **changes,
    }


def _refused(payload, status, code, path=wechatpay.REFUND_APPLY_PATH):
    with pytest.raises(WeChatPayError) as raised:
        get_client().post(path, payload)
    assert (raised.value.status, raised.value.code, raised.value.verified) == (status, code, True)
    return raised.value


def _query(number, sub_mchid="1900000201"):
    path = wechatpay.path(wechatpay.REFUND_BY_NUMBER_PATH, out_refund_no=number)
    return get_client().get(f"{path}?sub_mchid={sub_mchid}" if sub_mchid else path)


def test_a_refund_is_accepted_and_answered_by_number_and_by_id(paid, sandbox):
    answer = get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid)).data
    assert answer["out_refund_no"] == "R1" and answer["refund_id"].startswith("5030") and "status" not in answer
    assert answer["amount"] == {"refund": 500, "payer_refund": 500, "discount_refund": 0, "currency": "CNY"}
    by_number = _query("R1").data
    path = wechatpay.path(wechatpay.REFUND_BY_ID_PATH, refund_id=answer["refund_id"])
    by_id = get_client().get(f"{path}?sub_mchid=1900000201").data
    assert by_number == by_id and by_number["status"] == "SUCCESS" and by_number["success_time"]
    assert by_number["transaction_id"] == paid.transaction_id and by_number["channel"] == "ORIGINAL"
    assert "notify_url" not in by_number and "sub_mchid" not in by_number


def test_the_same_number_refunds_once(paid, sandbox):
    first = get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid)).data
    again = get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid)).data
    assert first == again and len(sandbox.refunds.dump()["refunds"]) == 1 and sandbox.refunds.posts["R1"] == 2


def test_the_same_number_for_another_amount_is_refused(paid, sandbox):
    get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid))
    _refused(body(paid, amount=501), 400, wechatpay.INVALID_REQUEST)


def test_over_refund_is_refused(paid, sandbox):
    get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid, "R1", 1000))
    _refused(body(paid, "R2", 501), 400, wechatpay.INVALID_REQUEST)
    get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid, "R3", 500))


def test_a_51st_refund_is_refused(paid, sandbox):
    for n in range(wechatpay.MAX_REFUNDS):
        get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid, f"R{n}", 1))
    _refused(body(paid, "R50", 1), 400, wechatpay.INVALID_REQUEST)


def test_an_order_never_paid_or_the_wrong_total_is_refused(paid, sandbox):
    _refused(body(paid, out_trade_no="NEVER-CHARGED"), 404, wechatpay.ORDER_NOT_EXIST)
    _refused({**body(paid), "amount": {"refund": 1, "total": 1, "currency": "CNY"}}, 400, wechatpay.PARAM_ERROR)
    no_order = body(paid)
    del no_order["out_trade_no"]
    _refused(no_order, 400, wechatpay.PARAM_ERROR)


def test_not_enough_refuses_unless_advanced(paid, sandbox):
    sandbox.refunds.not_enough = True
    _refused(body(paid), 403, wechatpay.NOT_ENOUGH)
    advanced = body(paid, "R2", refund_account=wechatpay.REFUND_SOURCE_PARTNER_ADVANCE)
    assert get_client().post(wechatpay.REFUND_APPLY_PATH, advanced).data["amount"]["advance"] == 500


def test_the_query_needs_sub_mchid_and_knows_only_its_own(paid, sandbox):
    get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid))
    with pytest.raises(WeChatPayError) as raised:
        _query("R1", sub_mchid="")
    assert raised.value.code == wechatpay.PARAM_ERROR
    with pytest.raises(WeChatPayError) as raised:
        _query("R1", sub_mchid="1900000999")
    assert raised.value.code == wechatpay.RESOURCE_NOT_EXISTS


def test_a_later_success_and_an_abnormal_retry(paid, sandbox):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    refund_id = get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid)).data["refund_id"]
    assert _query("R1").data["status"] == "ABNORMAL"
    path = wechatpay.path(wechatpay.ABNORMAL_REFUND_PATH, refund_id=refund_id)
    retried = get_client().post(path, {"sub_mchid": "1900000201", "out_refund_no": "R1", "type": "MERCHANT_BANK_CARD"})
    assert retried.data["status"] == "PROCESSING" and _query("R1").data["status"] == "SUCCESS"
    _refused({"sub_mchid": "1900000201"}, 400, wechatpay.INVALID_REQUEST, path=path)  # not abnormal any more


def test_refunds_are_kept_in_the_state_file(paid, sandbox, tmp_path, keys):
    state_file = tmp_path / "state.json"
    arguments = {
        "mchid": sandbox.state.mchid,
        "merchant_serial_no": sandbox.state.merchant_serial_no,
        "merchant_public_key": sandbox.state.merchant_public_key,
        "wechatpay_private_key": keys.wechatpay,
        "wechatpay_public_key_id": sandbox.state.wechatpay_public_key_id,
        "apiv3_key": keys.apiv3_key,
        "state_file": state_file,
    }
    first = SandboxState(**arguments)
    first.refunds.take(body(paid), {"transaction_id": "4200", "out_trade_no": "S1", "sub_mchid": "1"}, "")
    assert SandboxState(**arguments).refunds.get("R1")["out_trade_no"] == "S1"


# --- the loopback controls (a running demo's staff switch them by hand) ---------------------------------------


def test_the_refund_switches_can_be_set_over_http(sandbox):
    import requests

    answer = requests.post(
        sandbox.url + "/sandbox/refunds", json={"outcome": "ABNORMAL", "not_enough": True}, timeout=5
    )
    assert answer.status_code == 200 and answer.json() == {"outcome": "ABNORMAL", "not_enough": True, "refunds": []}
    assert (sandbox.refunds.outcome, sandbox.refunds.not_enough) == ("ABNORMAL", True)
    refused = requests.post(sandbox.url + "/sandbox/refunds", json={"outcome": "MAYBE"}, timeout=5)
    assert refused.status_code == 400


def test_a_processing_refund_is_finished_over_http(paid, sandbox):
    import requests

    sandbox.refunds.outcome = wechatpay.REFUND_PROCESSING
    get_client().post(wechatpay.REFUND_APPLY_PATH, body(paid))
    (listed,) = requests.get(sandbox.url + "/sandbox/refunds", timeout=5).json()["refunds"]
    assert (listed["out_refund_no"], listed["status"]) == ("R1", "PROCESSING")
    finished = requests.post(sandbox.url + "/sandbox/refunds/R1/finish", json={"status": "CLOSED"}, timeout=5)
    assert finished.status_code == 200 and _query("R1").data["status"] == "CLOSED"
    assert requests.post(sandbox.url + "/sandbox/refunds/NOPE/finish", timeout=5).status_code == 404

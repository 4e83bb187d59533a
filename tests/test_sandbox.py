"""The sandbox behaves like WeChat Pay over real HTTP: it checks, signs, refuses and fails on demand.

Plain pytest: the tests use no Django (the merchant signs its own requests, tests/sandbox_merchant.py).
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

import pytest
import requests
from urllib3.util import SKIP_HEADER

from django_papay import crypto, wechatpay
from django_papay.sandbox import RecordedRequest, Sandbox, ensure_demo_keys
from django_papay.sandbox.__main__ import main as sandbox_cli

from .helpers import MCHID, WECHATPAY_PUBLIC_KEY_ID, signature_verifies
from .sandbox_merchant import PRESIGN_PATH, Merchant, assert_error, presign_body

# --- the happy path -------------------------------------------------------------------------


def test_signed_presign_succeeds_with_a_verifiable_answer(sandbox: Sandbox, merchant: Merchant) -> None:
    response = merchant.post()

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["mchid"] == MCHID
    assert answer["plan_id"] == 12535
    assert answer["out_contract_code"] == "Contract20250101A1"
    assert 40 <= len(answer["pre_entrustweb_id"]) <= 64 and answer["pre_entrustweb_id"].isalnum()
    assert response.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert crypto.timestamp_is_fresh(response.headers[wechatpay.TIMESTAMP_HEADER])
    assert response.headers[wechatpay.REQUEST_ID_HEADER]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert merchant.verifies(response)


def test_accepted_presign_is_recorded(sandbox: Sandbox, merchant: Merchant) -> None:
    pre_entrustweb_id = merchant.post(presign_body(attach="order 42")).json()["pre_entrustweb_id"]

    recorded = sandbox.presigns[pre_entrustweb_id]
    assert recorded["attach"] == "order 42"
    assert recorded["out_contract_code"] == "Contract20250101A1"
    assert abs(recorded["created_at"] - time.time()) < 5


def test_every_request_is_recorded_with_case_insensitive_headers(sandbox: Sandbox, merchant: Merchant) -> None:
    merchant.post()
    merchant.post(path=PRESIGN_PATH + "?x=1", key=merchant.keys.wechatpay)  # refused, still recorded

    first, second = sandbox.requests
    assert isinstance(first, RecordedRequest)
    assert first.method == "POST" and first.path == PRESIGN_PATH
    assert first.headers["user-agent"] == "django-papay-tests"
    assert first.json()["plan_id"] == 12535
    assert second.path == PRESIGN_PATH + "?x=1"


def test_keep_alive_connection_serves_several_requests(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.post(sandbox.url + "/nowhere", headers={"Accept": "application/json"}, timeout=5)
            assert response.status_code == 404


def test_reset_forgets_requests_presigns_faults_and_delay(sandbox: Sandbox, merchant: Merchant) -> None:
    merchant.post()
    sandbox.fail_next("system_error")
    sandbox.response_delay = 1.0
    sandbox.notify_contract_id = True

    sandbox.reset()

    assert sandbox.requests == [] and sandbox.presigns == {} and sandbox.response_delay == 0.0
    assert sandbox.notify_contract_id is False
    assert merchant.post().status_code == 200


# --- refusals -------------------------------------------------------------------------------


def test_wrong_merchant_key_is_sign_error(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(key=crypto.generate_private_key()), 401, "SIGN_ERROR")
    assert sandbox.presigns == {}


def test_stale_authorization_timestamp_is_sign_error(sandbox: Sandbox, merchant: Merchant) -> None:
    error = assert_error(merchant, merchant.post(timestamp=int(time.time()) - 301), 401, "SIGN_ERROR")
    assert "timestamp" in error["message"]


def test_missing_authorization_is_sign_error(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(headers={"Authorization": None}), 401, "SIGN_ERROR")


def test_missing_user_agent_is_invalid_request(sandbox: Sandbox, merchant: Merchant) -> None:
    # SKIP_HEADER stops urllib3 from adding its own User-Agent.
    error = assert_error(merchant, merchant.post(headers={"User-Agent": SKIP_HEADER}), 400, "INVALID_REQUEST")
    assert "User-Agent" in error["message"]


def test_accept_without_json_is_invalid_request(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(headers={"Accept": "text/html"}), 400, "INVALID_REQUEST")


def test_unknown_wechatpay_public_key_id_is_param_error(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(headers={wechatpay.SERIAL_HEADER: "PUB_KEY_ID_0000"}), 400, "PARAM_ERROR")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan_id", "12535"),
        ("plan_id", True),
        ("out_contract_code", "Contract-1"),
        ("notify_url", "http://example.com/papay/notify/"),
        ("notify_url", "https://example.com/papay/notify/?order=1"),
        ("contract_display_account", ""),
        ("return_app", "yes"),
    ],
)
def test_body_rule_is_param_error_naming_the_field(merchant: Merchant, field: str, value: Any) -> None:
    error = assert_error(merchant, merchant.post(presign_body(**{field: value})), 400, "PARAM_ERROR")
    assert error["detail"]["field"] == field
    assert error["detail"]["value"] == value
    assert error["detail"]["location"] == "body"


def test_missing_required_field_is_param_error(sandbox: Sandbox, merchant: Merchant) -> None:
    payload = presign_body()
    del payload["appid"]
    assert assert_error(merchant, merchant.post(payload), 400, "PARAM_ERROR")["detail"]["field"] == "appid"


def test_body_that_is_not_an_object_is_param_error(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(["not", "an", "object"]), 400, "PARAM_ERROR")


def test_unknown_path_is_resource_not_exists(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(path="/v3/ecommerce/combine-papay/nothing"), 404, "RESOURCE_NOT_EXISTS")


def test_wrong_method_is_method_not_allowed(sandbox: Sandbox, merchant: Merchant) -> None:
    assert_error(merchant, merchant.post(method="GET"), 405, "METHOD_NOT_ALLOWED")


# --- demo keys and the command line ---------------------------------------------------------


def test_ensure_demo_keys_is_idempotent(tmp_path: Any) -> None:
    folder = tmp_path / "keys"
    first = ensure_demo_keys(folder)
    second = ensure_demo_keys(str(folder))

    assert first == second
    assert first.mchid == MCHID
    assert len(first.merchant_serial_no) == 40 and first.merchant_serial_no == first.merchant_serial_no.upper()
    assert first.wechatpay_public_key_id.startswith("PUB_KEY_ID_") and first.wechatpay_public_key_id[11:].isdigit()
    assert len(first.apiv3_key) == 32 and first.apiv3_key.isalnum()
    for path in (first.merchant_private_key_path, first.wechatpay_private_key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.apiv3_key not in repr(first)


def test_demo_keys_build_a_sandbox_the_demo_merchant_can_call(tmp_path: Any) -> None:
    keys = ensure_demo_keys(tmp_path)
    merchant_key = crypto.load_private_key(crypto.read_key_file(keys.merchant_private_key_path))
    body = json.dumps(presign_body()).encode()
    authorization = crypto.authorization(
        mchid=keys.mchid,
        serial_no=keys.merchant_serial_no,
        private_key=merchant_key,
        method="POST",
        url=PRESIGN_PATH,
        body=body,
    )
    headers = {"Authorization": authorization, "Accept": "application/json", "Content-Type": "application/json"}

    with keys.sandbox() as sandbox:
        response = requests.post(sandbox.url + PRESIGN_PATH, data=body, headers=headers, timeout=5)

    assert response.status_code == 200, response.text
    wechatpay_public_key = crypto.load_public_key(crypto.read_key_file(keys.wechatpay_public_key_path))
    assert signature_verifies(response.headers, response.content, wechatpay_public_key)


def test_stop_is_safe_twice(tmp_path: Any) -> None:
    sandbox = ensure_demo_keys(tmp_path).sandbox().start()
    sandbox.stop()
    sandbox.stop()


def test_cli_refuses_a_host_that_is_not_loopback(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sandbox_cli(["--keys-dir", str(tmp_path), "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_help_is_plain_text_with_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sandbox_cli(["--help"])
    shown = capsys.readouterr().out
    assert "``" not in shown  # no reStructuredText from a docstring
    assert "(default 8765;" in shown and "(default 127.0.0.1)" in shown
    assert "--notify-rewrite" in shown and "system_error_after" in shown and "--fault-delay" in shown

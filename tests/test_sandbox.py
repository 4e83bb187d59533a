"""The sandbox behaves like WeChat Pay over real HTTP: it checks, signs, refuses and fails on demand.

Plain pytest, no Django: run with ``pytest -p no:django tests/test_sandbox.py``.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from urllib3.util import SKIP_HEADER

from django_papay import crypto
from django_papay.sandbox import RecordedRequest, Sandbox, ensure_demo_keys
from django_papay.sandbox.__main__ import main as sandbox_cli

MCHID = "1900000109"
SERIAL_NO = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092025010100000000000001"
APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
PRESIGN_PATH = "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign"

MERCHANT_KEY = crypto.generate_private_key()
WECHATPAY_KEY = crypto.generate_private_key()


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        mchid=MCHID,
        merchant_serial_no=SERIAL_NO,
        merchant_public_key=crypto.public_key_pem(MERCHANT_KEY.public_key()),
        wechatpay_private_key=WECHATPAY_KEY,
        wechatpay_public_key_id=PUBLIC_KEY_ID,
        apiv3_key=APIV3_KEY,
    ) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    running_sandbox.fault_delay = 0.3
    return running_sandbox


def presign_body(**changes: Any) -> dict[str, Any]:
    body = {
        "appid": "wxd678efh567hg6787",
        "plan_id": 12535,
        "out_contract_code": "Contract20250101A1",
        "contract_display_account": "Demo user",
        "notify_url": "https://example.com/papay/notify/",
        "return_app": True,
    }
    body.update(changes)
    return body


def post(
    sandbox: Sandbox,
    payload: Any = None,
    *,
    path: str = PRESIGN_PATH,
    method: str = "POST",
    key: Any = MERCHANT_KEY,
    timestamp: int | None = None,
    headers: dict[str, Any] | None = None,
    timeout: float = 5,
) -> requests.Response:
    """Send a request signed the way the merchant's client signs it."""
    body = b"" if method == "GET" else json.dumps(presign_body() if payload is None else payload).encode()
    authorization = crypto.authorization(
        mchid=MCHID, serial_no=SERIAL_NO, private_key=key, method=method, url=path, body=body, timestamp=timestamp
    )
    all_headers = {
        "Authorization": authorization,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": "django-papay-tests",
        "Wechatpay-Serial": PUBLIC_KEY_ID,
        **(headers or {}),
    }
    return requests.request(method, sandbox.url + path, data=body, headers=all_headers, timeout=timeout)


def signature_verifies(response: requests.Response, public_key: Any = None) -> bool:
    public_key = public_key or WECHATPAY_KEY.public_key()
    message = crypto.response_message(
        response.headers["Wechatpay-Timestamp"], response.headers["Wechatpay-Nonce"], response.content
    )
    return crypto.verify(public_key, message, response.headers["Wechatpay-Signature"])


# --- the happy path -------------------------------------------------------------------------


def test_signed_presign_succeeds_with_a_verifiable_answer(sandbox: Sandbox) -> None:
    response = post(sandbox)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["mchid"] == MCHID
    assert answer["plan_id"] == 12535
    assert answer["out_contract_code"] == "Contract20250101A1"
    assert 40 <= len(answer["pre_entrustweb_id"]) <= 64 and answer["pre_entrustweb_id"].isalnum()
    assert response.headers["Wechatpay-Serial"] == PUBLIC_KEY_ID
    assert crypto.timestamp_is_fresh(response.headers["Wechatpay-Timestamp"])
    assert response.headers["Request-ID"]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert signature_verifies(response)


def test_accepted_presign_is_recorded(sandbox: Sandbox) -> None:
    pre_entrustweb_id = post(sandbox, presign_body(attach="order 42")).json()["pre_entrustweb_id"]

    recorded = sandbox.presigns[pre_entrustweb_id]
    assert recorded["attach"] == "order 42"
    assert recorded["out_contract_code"] == "Contract20250101A1"
    assert abs(recorded["created_at"] - time.time()) < 5


def test_every_request_is_recorded_with_case_insensitive_headers(sandbox: Sandbox) -> None:
    post(sandbox)
    post(sandbox, path=PRESIGN_PATH + "?x=1", key=WECHATPAY_KEY)  # refused, still recorded

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


def test_reset_forgets_requests_presigns_faults_and_delay(sandbox: Sandbox) -> None:
    post(sandbox)
    sandbox.fail_next("system_error")
    sandbox.response_delay = 1.0

    sandbox.reset()

    assert sandbox.requests == [] and sandbox.presigns == {} and sandbox.response_delay == 0.0
    assert post(sandbox).status_code == 200


# --- refusals -------------------------------------------------------------------------------


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert signature_verifies(response)
    return response.json()


def test_wrong_merchant_key_is_sign_error(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, key=crypto.generate_private_key()), 401, "SIGN_ERROR")
    assert sandbox.presigns == {}


def test_stale_authorization_timestamp_is_sign_error(sandbox: Sandbox) -> None:
    error = assert_error(post(sandbox, timestamp=int(time.time()) - 301), 401, "SIGN_ERROR")
    assert "timestamp" in error["message"]


def test_missing_authorization_is_sign_error(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, headers={"Authorization": None}), 401, "SIGN_ERROR")


def test_missing_user_agent_is_invalid_request(sandbox: Sandbox) -> None:
    # SKIP_HEADER stops urllib3 from adding its own User-Agent.
    error = assert_error(post(sandbox, headers={"User-Agent": SKIP_HEADER}), 400, "INVALID_REQUEST")
    assert "User-Agent" in error["message"]


def test_accept_without_json_is_invalid_request(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, headers={"Accept": "text/html"}), 400, "INVALID_REQUEST")


def test_unknown_wechatpay_public_key_id_is_param_error(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, headers={"Wechatpay-Serial": "PUB_KEY_ID_0000"}), 400, "PARAM_ERROR")


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
def test_body_rule_is_param_error_naming_the_field(sandbox: Sandbox, field: str, value: Any) -> None:
    error = assert_error(post(sandbox, presign_body(**{field: value})), 400, "PARAM_ERROR")
    assert error["detail"]["field"] == field
    assert error["detail"]["value"] == value
    assert error["detail"]["location"] == "body"


def test_missing_required_field_is_param_error(sandbox: Sandbox) -> None:
    payload = presign_body()
    del payload["appid"]
    assert assert_error(post(sandbox, payload), 400, "PARAM_ERROR")["detail"]["field"] == "appid"


def test_body_that_is_not_an_object_is_param_error(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, ["not", "an", "object"]), 400, "PARAM_ERROR")


def test_unknown_path_is_resource_not_exists(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, path="/v3/ecommerce/combine-papay/nothing"), 404, "RESOURCE_NOT_EXISTS")


def test_wrong_method_is_method_not_allowed(sandbox: Sandbox) -> None:
    assert_error(post(sandbox, method="GET"), 405, "METHOD_NOT_ALLOWED")


# --- injected faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("ratelimit", 429, "RATELIMIT_EXCEEDED"),
        ("system_error", 500, "SYSTEM_ERROR"),
        ("unavailable", 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_error_fault_answers_once_then_is_consumed(sandbox: Sandbox, fault: str, status: int, code: str) -> None:
    sandbox.fail_next(fault)

    assert_error(post(sandbox), status, code)
    assert post(sandbox).status_code == 200
    assert len(sandbox.presigns) == 1


def test_fault_applies_before_authentication(sandbox: Sandbox) -> None:
    sandbox.fail_next("ratelimit")
    assert_error(post(sandbox, key=crypto.generate_private_key()), 429, "RATELIMIT_EXCEEDED")


def test_fault_lasts_for_times_requests(sandbox: Sandbox) -> None:
    sandbox.fail_next("system_error", times=2)

    statuses = [post(sandbox).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_unknown_fault_is_value_error(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.fail_next("meteor_strike")


def test_timeout_fault_answers_late(sandbox: Sandbox) -> None:
    sandbox.fail_next("timeout")
    with pytest.raises(requests.Timeout):
        post(sandbox, timeout=0.1)

    sandbox.fail_next("timeout")
    started = time.monotonic()
    response = post(sandbox)
    assert time.monotonic() - started >= sandbox.fault_delay
    assert response.status_code == 200 and signature_verifies(response)


def test_reset_fault_drops_the_connection(sandbox: Sandbox) -> None:
    sandbox.fail_next("reset")
    with pytest.raises(requests.ConnectionError):
        post(sandbox)
    assert post(sandbox).status_code == 200


def test_bad_signature_fault_answers_with_a_signature_that_does_not_verify(sandbox: Sandbox) -> None:
    sandbox.fail_next("bad_signature")
    response = post(sandbox)
    assert response.status_code == 200 and "pre_entrustweb_id" in response.json()
    assert not signature_verifies(response)
    assert signature_verifies(post(sandbox))


def test_unknown_serial_fault_signs_with_another_key(sandbox: Sandbox) -> None:
    sandbox.fail_next("unknown_serial")
    response = post(sandbox)
    assert response.headers["Wechatpay-Serial"] == "PUB_KEY_ID_0000000000000000000000000000UNKNOWN"
    assert not signature_verifies(response)


def test_not_json_fault_answers_signed_html(sandbox: Sandbox) -> None:
    sandbox.fail_next("not_json")
    response = post(sandbox)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content == b"<html>upstream error</html>"
    assert signature_verifies(response)


def test_truncated_fault_sends_less_body_than_announced(sandbox: Sandbox) -> None:
    sandbox.fail_next("truncated")
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        post(sandbox)
    assert post(sandbox).status_code == 200


def test_stale_timestamp_fault_signs_an_old_timestamp(sandbox: Sandbox) -> None:
    sandbox.fail_next("stale_timestamp")
    response = post(sandbox)
    assert signature_verifies(response)
    assert not crypto.timestamp_is_fresh(response.headers["Wechatpay-Timestamp"])


def test_answer_next_sends_the_given_signed_error(sandbox: Sandbox) -> None:
    detail = {"field": "appid", "value": "wx1", "issue": "not bound", "location": "body"}
    sandbox.answer_next(403, "NO_AUTH", "商户无权限", times=2, detail=detail)

    for _ in range(2):
        error = assert_error(post(sandbox), 403, "NO_AUTH")
        assert error == {"code": "NO_AUTH", "message": "商户无权限", "detail": detail}
    assert post(sandbox).status_code == 200


def test_response_delay_slows_every_answer(sandbox: Sandbox) -> None:
    sandbox.response_delay = 0.2
    started = time.monotonic()
    post(sandbox, path="/nowhere")
    assert time.monotonic() - started >= 0.2


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
    assert signature_verifies(response, wechatpay_public_key)


def test_stop_is_safe_twice(tmp_path: Any) -> None:
    sandbox = ensure_demo_keys(tmp_path).sandbox().start()
    sandbox.stop()
    sandbox.stop()


def test_cli_refuses_a_host_that_is_not_loopback(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sandbox_cli(["--keys-dir", str(tmp_path), "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err

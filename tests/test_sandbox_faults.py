"""Injected faults over real HTTP: each one reaches the client the way its table row in ``faults`` says.

Plain pytest: the tests use no Django (the merchant signs its own requests, tests/sandbox_merchant.py).
"""

from __future__ import annotations

import time

import pytest
import requests

from django_papay import crypto, wechatpay
from django_papay.sandbox import Sandbox

from .sandbox_merchant import Merchant, assert_error


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("ratelimit", 429, "RATELIMIT_EXCEEDED"),
        ("system_error", 500, "SYSTEM_ERROR"),
        ("unavailable", 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_error_fault_answers_once_then_is_consumed(
    sandbox: Sandbox, merchant: Merchant, fault: str, status: int, code: str
) -> None:
    sandbox.fail_next(fault)

    assert_error(merchant, merchant.post(), status, code)
    assert merchant.post().status_code == 200
    assert len(sandbox.presigns) == 1


def test_fault_applies_before_authentication(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("ratelimit")
    assert_error(merchant, merchant.post(key=crypto.generate_private_key()), 429, "RATELIMIT_EXCEEDED")


def test_fault_lasts_for_times_requests(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("system_error", times=2)

    statuses = [merchant.post().status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_unknown_fault_is_value_error(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.fail_next("meteor_strike")


def test_timeout_fault_answers_late(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fault_delay = 0.3
    sandbox.fail_next("timeout")
    with pytest.raises(requests.Timeout):
        merchant.post(timeout=0.1)

    sandbox.fail_next("timeout")
    started = time.monotonic()
    response = merchant.post()
    assert time.monotonic() - started >= sandbox.fault_delay
    assert response.status_code == 200 and merchant.verifies(response)


def test_reset_fault_drops_the_connection(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("reset")
    with pytest.raises(requests.ConnectionError):
        merchant.post()
    assert merchant.post().status_code == 200


def test_bad_signature_fault_answers_with_a_signature_that_does_not_verify(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    sandbox.fail_next("bad_signature")
    response = merchant.post()
    assert response.status_code == 200 and "pre_entrustweb_id" in response.json()
    assert not merchant.verifies(response)
    assert merchant.verifies(merchant.post())


def test_unknown_serial_fault_signs_with_another_key(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("unknown_serial")
    response = merchant.post()
    assert response.headers[wechatpay.SERIAL_HEADER] == "PUB_KEY_ID_0000000000000000000000000000UNKNOWN"
    assert not merchant.verifies(response)


def test_not_json_fault_answers_signed_html(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("not_json")
    response = merchant.post()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content == b"<html>upstream error</html>"
    assert merchant.verifies(response)


def test_truncated_fault_sends_less_body_than_announced(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("truncated")
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        merchant.post()
    assert merchant.post().status_code == 200


def test_stale_timestamp_fault_signs_an_old_timestamp(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.fail_next("stale_timestamp")
    response = merchant.post()
    assert merchant.verifies(response)
    assert not crypto.timestamp_is_fresh(response.headers[wechatpay.TIMESTAMP_HEADER])


def test_answer_next_sends_the_given_signed_error(sandbox: Sandbox, merchant: Merchant) -> None:
    detail = {"field": "appid", "value": "wx1", "issue": "not bound", "location": "body"}
    sandbox.answer_next(403, "NO_AUTH", "商户无权限", times=2, detail=detail)

    for _ in range(2):
        error = assert_error(merchant, merchant.post(), 403, "NO_AUTH")
        assert error == {"code": "NO_AUTH", "message": "商户无权限", "detail": detail}
    assert merchant.post().status_code == 200


def test_response_delay_slows_every_answer(sandbox: Sandbox, merchant: Merchant) -> None:
    sandbox.response_delay = 0.2
    started = time.monotonic()
    merchant.post(path="/nowhere")
    assert time.monotonic() - started >= 0.2

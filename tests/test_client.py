"""client.py against the sandbox over real HTTP: signed requests, verified answers, typed errors."""

import pytest

from django_papay import __version__, crypto, wechatpay
from django_papay.exceptions import InvalidResponseError, WeChatPayError, WeChatPayNetworkError
from django_papay.services.connections import get_client

from .helpers import (
    MCHID,
    MERCHANT_SERIAL_NO,
    PRESIGN,
    WECHATPAY_PUBLIC_KEY_ID,
    make_sandbox,
    presign_payload,
    refused_url,
)

PAYLOAD = presign_payload("100001256")


def test_request_carries_a_valid_merchant_signature_and_required_headers(papay, sandbox, keys):
    get_client().post(PRESIGN, PAYLOAD)
    (sent,) = sandbox.requests
    fields = crypto.parse_authorization(sent.headers["Authorization"])
    assert fields["mchid"] == MCHID
    assert fields["serial_no"] == MERCHANT_SERIAL_NO
    message = crypto.request_message("POST", PRESIGN, fields["timestamp"], fields["nonce_str"], sent.body)
    assert crypto.verify(keys.merchant.public_key(), message, fields["signature"])
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"].startswith(f"django-papay/{__version__} ")
    assert sent.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID


def test_each_request_has_a_fresh_nonce(papay, sandbox):
    get_client().post(PRESIGN, PAYLOAD)
    get_client().post(PRESIGN, {**PAYLOAD, "out_contract_code": "100001257"})
    nonces = {crypto.parse_authorization(r.headers["Authorization"])["nonce_str"] for r in sandbox.requests}
    assert len(nonces) == 2


def test_verified_answer_is_returned(papay, sandbox):
    answer = get_client().post(PRESIGN, PAYLOAD)
    assert answer.status == 200
    assert answer.data["out_contract_code"] == "100001256"
    assert answer.data["pre_entrustweb_id"] in sandbox.presigns
    assert answer.request_id


def test_client_and_its_session_are_reused_for_the_same_settings(papay):
    assert get_client() is get_client()


def test_changed_settings_give_a_client_for_the_new_settings(papay, settings):
    first = get_client()
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": 7}
    assert get_client() is not first
    assert get_client().config.timeout == (7.0, 7.0)


@pytest.mark.parametrize("fault", ["bad_signature", "unknown_serial", "stale_timestamp"])
def test_untrusted_answer_is_refused(papay, sandbox, fault):
    sandbox.fail_next(fault)
    with pytest.raises(InvalidResponseError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"
    assert caught.value.retryable is True


def test_an_unknown_serial_names_the_trusted_key_and_the_likely_cause(papay, sandbox):
    sandbox.fail_next("unknown_serial")
    with pytest.raises(InvalidResponseError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    message = caught.value.message
    assert "unknown key" in message and f"this site trusts {WECHATPAY_PUBLIC_KEY_ID!r}" in message
    assert "--keys-dir" in message  # the usual cause: a sandbox on other keys


def test_answer_that_is_not_json_is_refused(papay, sandbox):
    sandbox.fail_next("not_json")
    with pytest.raises(InvalidResponseError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert caught.value.code == "INVALID_RESPONSE_BODY"
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "status, code, retryable",
    [
        (400, "PARAM_ERROR", False),
        (400, "INVALID_REQUEST", False),
        (403, "NO_AUTH", False),
        (404, "RESOURCE_NOT_EXISTS", False),
        (429, "RATELIMIT_EXCEEDED", True),
        (500, "SYSTEM_ERROR", True),
        (503, "SERVICE_UNAVAILABLE", True),
    ],
)
def test_error_answers_become_typed_errors(papay, sandbox, status, code, retryable):
    sandbox.answer_next(status, code, "simulated", detail={"field": "plan_id", "issue": "bad", "location": "body"})
    with pytest.raises(WeChatPayError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    error = caught.value
    assert (error.status, error.code, error.message, error.retryable) == (status, code, "simulated", retryable)
    assert error.detail["field"] == "plan_id"
    assert error.request_id


@pytest.mark.parametrize(
    "fault, status, code",
    [
        ("ratelimit", 429, "RATELIMIT_EXCEEDED"),
        ("system_error", 500, "SYSTEM_ERROR"),
        ("unavailable", 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_sandbox_fault_switches_give_retryable_errors(papay, sandbox, fault, status, code):
    sandbox.fail_next(fault)
    with pytest.raises(WeChatPayError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (status, code, True)


def test_wrong_merchant_key_gets_sign_error_401(papay, settings, keys):
    settings.PAPAY = {**settings.PAPAY, "MERCHANT_PRIVATE_KEY": crypto.private_key_pem(keys.stranger)}
    with pytest.raises(WeChatPayError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (401, "SIGN_ERROR", False)


def test_timeout_is_a_retryable_network_error(papay, sandbox, settings):
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": (1.0, 0.3)}
    sandbox.fault_delay = 1.0
    sandbox.fail_next("timeout")
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("TIMEOUT", None, True)


@pytest.mark.parametrize("fault", ["reset", "truncated"])
def test_broken_connection_is_a_retryable_network_error(papay, sandbox, fault):
    sandbox.fail_next(fault)
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert caught.value.retryable is True
    assert "may have reached it" in caught.value.message  # not "could not reach": it was connected


def test_refused_connection_is_a_retryable_network_error(papay, settings):
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": refused_url()}
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert (caught.value.code, caught.value.retryable) == ("NETWORK_ERROR", True)


def test_an_unreachable_host_is_named_with_what_to_check(papay, settings):
    url = refused_url()
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": url}
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, PAYLOAD)
    assert f"could not reach WeChat Pay at {url}" in caught.value.message
    assert "BASE_URL" in caught.value.message and "sandbox" in caught.value.message


def test_signed_error_answer_from_an_impostor_is_refused(papay, settings, keys):
    with make_sandbox(keys, wechatpay_private_key=keys.stranger) as impostor:
        settings.PAPAY = {**settings.PAPAY, "BASE_URL": impostor.url}
        impostor.answer_next(400, "PARAM_ERROR", "forged")
        with pytest.raises(InvalidResponseError) as caught:
            get_client().post(PRESIGN, PAYLOAD)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"

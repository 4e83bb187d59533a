"""services.presign: what is sent, what is stored, and what a failure leaves behind."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from django_papay import crypto
from django_papay.exceptions import ContractStateError, InvalidResponseError, WeChatPayError
from django_papay.models import Contract
from django_papay.services import presign

from .helpers import APPID, MCHID, NOTIFY_URL

pytestmark = pytest.mark.django_db


def test_presign_sends_exactly_the_documented_fields(papay, sandbox, contract):
    presign(contract)
    (sent,) = sandbox.requests
    assert (sent.method, sent.path) == ("POST", "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign")
    assert sent.json() == {
        "appid": APPID,
        "plan_id": 12535,
        "out_contract_code": contract.out_contract_code,
        "contract_display_account": "138****8888",
        "notify_url": NOTIFY_URL,
    }


def test_presign_stores_the_pre_entrustweb_id(papay, sandbox, contract):
    before = timezone.now()
    presign(contract)
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.pre_entrustweb_id in sandbox.presigns
    assert stored.pre_entrustweb_id == contract.pre_entrustweb_id
    assert stored.status == Contract.Status.PRESIGNED
    assert stored.mchid == MCHID
    assert before <= stored.presigned_at <= timezone.now()
    assert stored.presign_expires_at == stored.presigned_at + timedelta(hours=2)


def test_optional_fields_are_sent_when_set(papay, sandbox, settings):
    settings.PAPAY = {**settings.PAPAY, "RETURN_APP": True}
    contract = Contract.objects.create(
        plan_id=1, contract_display_account="a", appid="wx0000000000000001", attach="order=42"
    )
    presign(contract)
    body = sandbox.requests[0].json()
    assert (body["appid"], body["return_app"], body["attach"]) == ("wx0000000000000001", True, "order=42")


def test_success_clears_the_last_error(papay, sandbox, contract):
    sandbox.fail_next("system_error")
    with pytest.raises(WeChatPayError):
        presign(contract)
    presign(contract)
    assert Contract.objects.get(pk=contract.pk).last_error == ""


def test_forged_answer_signature_stores_nothing(papay, sandbox, contract):
    sandbox.fail_next("bad_signature")
    with pytest.raises(InvalidResponseError):
        presign(contract)
    stored = Contract.objects.get(pk=contract.pk)
    assert (stored.pre_entrustweb_id, stored.presigned_at, stored.status) == ("", None, Contract.Status.CREATED)
    assert "INVALID_RESPONSE_SIGNATURE" in stored.last_error


@pytest.mark.parametrize(
    "status, code, final_status",
    [
        (400, "PARAM_ERROR", Contract.Status.FAILED),
        (401, "SIGN_ERROR", Contract.Status.FAILED),
        (403, "NO_AUTH", Contract.Status.FAILED),
        (429, "RATELIMIT_EXCEEDED", Contract.Status.CREATED),
        (500, "SYSTEM_ERROR", Contract.Status.CREATED),
        (503, "SERVICE_UNAVAILABLE", Contract.Status.CREATED),
    ],
)
def test_wechatpay_error_is_recorded_and_only_final_errors_fail_the_contract(
    papay, sandbox, contract, status, code, final_status
):
    sandbox.answer_next(status, code, "simulated message")
    with pytest.raises(WeChatPayError) as caught:
        presign(contract)
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == final_status
    assert code in stored.last_error and "simulated message" in stored.last_error
    assert caught.value.request_id in stored.last_error
    assert stored.pre_entrustweb_id == ""


@pytest.mark.parametrize("fault", ["timeout", "reset"])
def test_network_failure_leaves_the_contract_retryable(papay, sandbox, settings, contract, fault):
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": (1.0, 0.3)}
    sandbox.fault_delay = 1.0
    sandbox.fail_next(fault)
    with pytest.raises(WeChatPayError) as caught:
        presign(contract)
    assert caught.value.retryable
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == Contract.Status.CREATED
    assert stored.last_error.startswith(caught.value.code)


def test_refused_connection_leaves_the_contract_retryable(papay, settings, contract):
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": "http://127.0.0.1:1"}
    with pytest.raises(WeChatPayError):
        presign(contract)
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == Contract.Status.CREATED
    assert "NETWORK_ERROR" in stored.last_error


def test_failed_contract_can_be_presigned_after_fixing_it(papay, sandbox, contract):
    sandbox.answer_next(400, "PARAM_ERROR", "bad display account")
    with pytest.raises(WeChatPayError):
        presign(contract)
    presign(contract)
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.PRESIGNED


@pytest.mark.parametrize("status", [Contract.Status.SIGNED, Contract.Status.TERMINATED])
def test_signed_or_terminated_contract_cannot_be_presigned(papay, sandbox, contract, status):
    Contract.objects.filter(pk=contract.pk).update(status=status)
    contract.refresh_from_db()
    with pytest.raises(ContractStateError):
        presign(contract)
    assert sandbox.requests == []


def test_live_presign_session_is_not_replaced(papay, sandbox, contract):
    presign(contract)
    with pytest.raises(ContractStateError, match="valid until"):
        presign(contract)
    assert len(sandbox.requests) == 1


def test_expired_presign_session_can_be_presigned_again(papay, sandbox, contract):
    presign(contract)
    first_id = contract.pre_entrustweb_id
    Contract.objects.filter(pk=contract.pk).update(presigned_at=timezone.now() - timedelta(hours=2, seconds=1))
    contract.refresh_from_db()
    presign(contract)
    assert contract.pre_entrustweb_id != first_id
    assert Contract.objects.get(pk=contract.pk).pre_entrustweb_id == contract.pre_entrustweb_id


@pytest.mark.parametrize(
    "field, value",
    [
        ("out_contract_code", "x" * 33),
        ("out_contract_code", "2026-0001"),
        ("out_contract_code", "合约0001"),
        ("out_contract_code", "abc def"),
        ("contract_display_account", "y" * 33),
        ("appid", "wx-bad"),
        ("attach", "z" * 256),
    ],
)
def test_invalid_fields_are_refused_before_any_request(papay, sandbox, contract, field, value):
    setattr(contract, field, value)
    with pytest.raises(ValidationError) as caught:
        presign(contract)
    assert field in caught.value.message_dict
    assert sandbox.requests == []
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.CREATED


def test_missing_appid_everywhere_is_refused_before_any_request(papay, sandbox, settings, contract):
    settings.PAPAY = {k: v for k, v in settings.PAPAY.items() if k != "APPID"}
    with pytest.raises(ValidationError) as caught:
        presign(contract)
    assert "appid" in caught.value.message_dict
    assert sandbox.requests == []


def test_unsaved_contract_is_validated_then_saved(papay, sandbox):
    contract = presign(Contract(plan_id=7, contract_display_account="new"))
    assert contract.pk is not None
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.PRESIGNED


def test_generated_out_contract_code_follows_wechatpay_rules():
    contract = Contract(plan_id=1, contract_display_account="a")
    contract.save()
    assert len(contract.out_contract_code) <= 32
    assert contract.out_contract_code.isascii() and contract.out_contract_code.isalnum()


def test_answer_for_another_contract_is_refused(papay, sandbox, contract):
    sandbox.fail_next("other_contract")
    with pytest.raises(InvalidResponseError) as caught:
        presign(contract)
    assert caught.value.code == "ANSWER_MISMATCH"
    assert Contract.objects.get(pk=contract.pk).pre_entrustweb_id == ""


def test_no_secret_is_logged_at_debug(papay, sandbox, contract, keys, caplog):
    caplog.set_level("DEBUG")
    presign(contract)
    sandbox.answer_next(500, "SYSTEM_ERROR", "boom")
    Contract.objects.filter(pk=contract.pk).update(presigned_at=timezone.now() - timedelta(hours=3))
    contract.refresh_from_db()
    with pytest.raises(WeChatPayError):
        presign(contract)
    authorization = sandbox.requests[0].headers["Authorization"]
    signature = crypto.parse_authorization(authorization)["signature"]
    private_body = keys.merchant_pem.splitlines()[1]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "expected the client to log its calls"
    for secret in (keys.apiv3_key, signature, authorization, private_body):
        assert secret not in logged

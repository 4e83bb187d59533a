"""query, terminate, mini-program pre-sign and expiry, against the sandbox's contract book."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from django_papay.exceptions import ContractStateError, WeChatPayError
from django_papay.models import Contract, Notification
from django_papay.services import expire_presigns, presign, presign_mini_program, query, terminate

from .helpers import deliver

pytestmark = pytest.mark.django_db


# --- the sandbox's endpoints ----------------------------------------------------------------


def test_sandbox_query_answers_each_contract_state(presigned_contract, sandbox):
    from django_papay.services.connections import get_client
    from django_papay.services.contracts import contract_path

    path = contract_path(presigned_contract)
    assert get_client().get(path).data["contract_state"] == "NOT_SIGNED"
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)
    signed = get_client().get(path).data
    assert signed["contract_state"] == "SIGNED"
    assert signed["openid"] and signed["contract_id"] and signed["contract_signed_time"]
    sandbox.terminate_contract(presigned_contract.out_contract_code, mode="USER_TERMINATE", drop=True)
    terminated = get_client().get(path).data
    assert terminated["contract_state"] == "TERMINATED"
    assert terminated["contract_terminate_info"]["contract_termination_mode"] == "USER_TERMINATE"
    assert terminated["contract_terminate_info"]["contract_terminated_time"]


def test_query_of_a_contract_never_pre_signed_is_refused_before_sending(papay, sandbox):
    never = Contract.objects.create(plan_id=1, contract_display_account="x")
    with pytest.raises(ContractStateError, match="never pre-signed"):
        query(never)
    assert sandbox.requests == []
    never.refresh_from_db()
    assert never.status == Contract.Status.CREATED and never.last_error == ""


def test_sandbox_query_of_unknown_contract_is_404(papay, sandbox):
    # Pre-signed here, unknown to WeChat Pay (say, against another merchant's WeChat Pay).
    stranger = Contract.objects.create(plan_id=1, contract_display_account="x")
    Contract.objects.filter(pk=stranger.pk).update(presigned_at=timezone.now() - timedelta(hours=3))
    stranger.refresh_from_db()
    with pytest.raises(WeChatPayError) as caught:
        query(stranger)
    assert (caught.value.status, caught.value.code) == (404, "RESOURCE_NOT_EXISTS")
    stranger.refresh_from_db()
    assert stranger.status == Contract.Status.CREATED and "RESOURCE_NOT_EXISTS" in stranger.last_error


# --- query ------------------------------------------------------------------------------------


def test_query_not_signed_keeps_a_live_presign(presigned_contract, sandbox):
    query(presigned_contract)
    assert presigned_contract.status == Contract.Status.PRESIGNED
    assert presigned_contract.queried_at is not None
    assert sandbox.requests[-1].method == "GET"


def test_query_not_signed_after_two_hours_expires_the_presign(presigned_contract, sandbox):
    two_hours_ago = timezone.now() - timedelta(hours=2, minutes=1)
    Contract.objects.filter(pk=presigned_contract.pk).update(presigned_at=two_hours_ago)
    presigned_contract.refresh_from_db()
    query(presigned_contract)
    assert presigned_contract.status == Contract.Status.EXPIRED


def test_query_signed_applies_the_signing_once(presigned_contract, sandbox, signals):
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)  # the notification never arrives
    query(presigned_contract)
    assert presigned_contract.status == Contract.Status.SIGNED
    assert presigned_contract.openid and presigned_contract.contract_id
    assert presigned_contract.signed_at and presigned_contract.contract_expired_at
    query(presigned_contract)
    assert signals == [("signed", presigned_contract.pk, None)]


def test_query_terminated_applies_terminate_info(presigned_contract, sandbox, signals):
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)
    sandbox.terminate_contract(presigned_contract.out_contract_code, mode="CUSTOMER_SERVICE_TERMINATE", drop=True)
    query(presigned_contract)
    assert presigned_contract.status == Contract.Status.TERMINATED
    assert presigned_contract.termination_mode == "CUSTOMER_SERVICE_TERMINATE"
    assert presigned_contract.terminated_at is not None and presigned_contract.signed_at is not None
    assert [kind for kind, _, _ in signals] == ["signed", "terminated"]


def test_query_never_regresses_a_terminated_contract(presigned_contract, sandbox, signals):
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)  # WeChat Pay's book: SIGNED
    assert deliver(sandbox.terminate_notification(presigned_contract.out_contract_code)).status_code == 204
    query(presigned_contract)  # answers SIGNED: older news than the termination we already applied
    assert presigned_contract.status == Contract.Status.TERMINATED
    assert [kind for kind, _, _ in signals] == ["terminated"]


def test_query_never_regresses_a_signed_contract_to_expired(presigned_contract, sandbox):
    assert deliver(sandbox.sign_notification(presigned_contract.out_contract_code)).status_code == 204
    Contract.objects.filter(pk=presigned_contract.pk).update(presigned_at=timezone.now() - timedelta(hours=3))
    presigned_contract.refresh_from_db()
    query(presigned_contract)  # the sandbox's book still says NOT_SIGNED (the SIGN above was only built)
    assert presigned_contract.status == Contract.Status.SIGNED


def test_query_failure_is_recorded_and_leaves_the_state(presigned_contract, sandbox):
    sandbox.fail_next("unavailable")
    with pytest.raises(WeChatPayError):
        query(presigned_contract)
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.PRESIGNED
    assert "SERVICE_UNAVAILABLE" in presigned_contract.last_error


# --- terminate --------------------------------------------------------------------------------


def test_terminate_ends_a_signed_contract(signed_contract, sandbox, signals):
    terminate(signed_contract, "用户申请解约")
    assert sandbox.requests[-1].json() == {"contract_termination_remark": "用户申请解约"}
    assert sandbox.requests[-1].path.endswith(f"/out-contract-code/{signed_contract.out_contract_code}/terminate")
    assert signed_contract.status == Contract.Status.TERMINATED
    termination = (signed_contract.termination_mode, signed_contract.termination_remark)
    assert termination == ("MCH_API_TERMINATE", "用户申请解约")
    assert signals == [("terminated", signed_contract.pk, None)]
    assert query(signed_contract).status == Contract.Status.TERMINATED


def test_terminate_notification_after_the_api_call_is_ignored(signed_contract, sandbox):
    terminate(signed_contract, "done")
    notification = sandbox.terminate_notification(signed_contract.out_contract_code, mode="MCH_API_TERMINATE")
    assert deliver(notification).status_code == 204
    assert Notification.objects.get().result == "ignored"


@pytest.mark.parametrize("remark", ["", "   ", "x" * 257])
def test_terminate_needs_a_remark_of_1_to_256_characters(signed_contract, sandbox, remark):
    sent = len(sandbox.requests)
    with pytest.raises(ValidationError):
        terminate(signed_contract, remark)
    assert len(sandbox.requests) == sent


def test_only_a_signed_contract_can_be_terminated(presigned_contract, sandbox):
    sent = len(sandbox.requests)
    with pytest.raises(ContractStateError):
        terminate(presigned_contract, "no")
    assert len(sandbox.requests) == sent


def test_terminate_error_is_recorded_and_the_contract_stays_signed(signed_contract, sandbox):
    sandbox.answer_next(400, "INVALID_REQUEST", "协议状态不允许解约")
    with pytest.raises(WeChatPayError):
        terminate(signed_contract, "please")
    signed_contract.refresh_from_db()
    assert signed_contract.status == Contract.Status.SIGNED and "协议状态不允许解约" in signed_contract.last_error


# --- mini-program pre-sign and expiry -------------------------------------------------------


def test_mini_program_presign_uses_its_endpoint_and_records_the_channel(papay, sandbox, settings):
    settings.PAPAY = {**settings.PAPAY, "RETURN_APP": True}
    contract = Contract.objects.create(plan_id=12535, contract_display_account="a", attach="not for mini programs")
    presign_mini_program(contract)
    (sent,) = sandbox.requests
    assert sent.path == "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign/mini-program"
    assert set(sent.json()) == {"appid", "plan_id", "out_contract_code", "contract_display_account", "notify_url"}
    assert (contract.status, contract.presign_channel) == (Contract.Status.PRESIGNED, "mini_program")


def test_app_presign_records_the_app_channel(presigned_contract):
    assert Contract.objects.get(pk=presigned_contract.pk).presign_channel == "app"


def test_presign_expires_after_two_hours_and_can_be_presigned_again(presigned_contract, sandbox):
    started = presigned_contract.presigned_at
    assert expire_presigns(now=started + timedelta(hours=1, minutes=59, seconds=59)) == 0
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.PRESIGNED
    assert expire_presigns(now=started + timedelta(hours=2)) == 1
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.EXPIRED
    Contract.objects.filter(pk=presigned_contract.pk).update(presigned_at=started - timedelta(hours=2))
    presigned_contract.refresh_from_db()
    presign(presigned_contract)
    assert presigned_contract.status == Contract.Status.PRESIGNED and presigned_contract.presigned_at > started


def test_a_sign_arriving_after_expiry_still_signs(presigned_contract, sandbox):
    expire_presigns(now=presigned_contract.presigned_at + timedelta(hours=2))
    assert deliver(sandbox.sign_notification(presigned_contract.out_contract_code)).status_code == 204
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED

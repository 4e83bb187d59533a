"""How often a user can make the server call WeChat Pay from the App, and what WeChat Pay's errors leave behind:
a 429 with Retry-After when the budget is spent; 503/502 with nothing half-stored when WeChat Pay fails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from django_papay.models import Contract, PresignAttempt

from .helpers import OTHER_PLAN_ID, app_contract, app_presign


def _expire_sessions() -> None:
    for contract in Contract.objects.all():
        Contract.objects.filter(pk=contract.pk).update(presigned_at=contract.presigned_at - timedelta(hours=3))


def test_spent_budget_answers_429_with_retry_after_and_sends_nothing(app_papay, sandbox, app_user):
    app_papay["APP_PRESIGN_LIMIT"] = (2, 3600)
    client = app_user()
    assert app_presign(client).status_code == 200
    assert app_presign(client, plan_id=OTHER_PLAN_ID).status_code == 200
    _expire_sessions()
    answer = app_presign(client)
    assert answer.status_code == 429 and answer.json()["code"] == "PRESIGN_LIMIT"
    assert 3590 <= int(answer["Retry-After"]) <= 3600
    assert len(sandbox.requests) == 2
    assert PresignAttempt.objects.count() == 2  # the refused claim was given back


def test_budget_frees_up_once_the_window_has_passed(app_papay, sandbox, app_user):
    app_papay["APP_PRESIGN_LIMIT"] = (1, 3600)
    client = app_user()
    app_presign(client)
    _expire_sessions()
    PresignAttempt.objects.update(created_at=PresignAttempt.objects.get().created_at - timedelta(hours=1))
    assert app_presign(client).status_code == 200
    assert PresignAttempt.objects.count() == 1  # the old one was pruned


def test_budget_is_per_user(app_papay, sandbox, app_user):
    app_papay["APP_PRESIGN_LIMIT"] = (1, 3600)
    assert app_presign(app_user("13812348888")).status_code == 200
    assert app_presign(app_user("13900000000")).status_code == 200


def test_a_live_session_or_a_signed_contract_costs_no_budget(app_papay, sandbox, app_user):
    app_papay["APP_PRESIGN_LIMIT"] = (1, 3600)
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    assert [app_presign(client).status_code for _ in range(5)] == [200] * 5
    sandbox.sign_contract(code, drop=True)
    app_contract(client, code, refresh=True)
    assert [app_presign(client).json()["status"] for _ in range(3)] == ["signed"] * 3


@pytest.mark.parametrize("fault", ["system_error", "ratelimit", "unavailable", "reset"])
def test_retryable_wechatpay_failure_is_503_and_leaves_the_contract_retryable(app_papay, sandbox, app_user, fault):
    sandbox.fail_next(fault)
    client = app_user()
    answer = app_presign(client)
    assert answer.status_code == 503 and answer["Retry-After"] == "5"
    assert set(answer.json()) == {"code", "message"}
    contract = Contract.objects.get()
    assert contract.status == Contract.Status.CREATED and contract.pre_entrustweb_id == ""
    assert contract.last_error.startswith(answer.json()["code"])
    assert PresignAttempt.objects.get().error == contract.last_error
    retried = app_presign(client).json()  # the same contract, now pre-signed
    assert retried["status"] == "presigned" and retried["out_contract_code"] == contract.out_contract_code


def test_wechatpay_refusal_is_502_with_its_code_and_nothing_half_stored(app_papay, sandbox, app_user):
    sandbox.answer_next(400, "PARAM_ERROR", "contract_display_account is invalid")
    answer = app_presign(app_user())
    assert answer.status_code == 502
    assert answer.json()["code"] == "PARAM_ERROR"
    contract = Contract.objects.get()
    assert contract.pre_entrustweb_id == "" and contract.presigned_at is None
    assert "contract_display_account is invalid" in contract.last_error


def test_failed_refresh_is_503_and_the_contract_stays_as_it_was(app_papay, sandbox, app_user):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    sandbox.fail_next("system_error")
    answer = app_contract(client, code, refresh=True)
    assert answer.status_code == 503 and answer.json()["code"] == "SYSTEM_ERROR"
    assert Contract.objects.get().status == Contract.Status.PRESIGNED

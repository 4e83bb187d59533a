"""Every contract action through the Django test client: permissions, the terminate confirmation, bulk speed."""

import time

import pytest
from django.urls import reverse

from django_papay.models import Contract, Notification
from django_papay.services import presign
from django_papay.signals import contract_signed

from .helpers import CONTRACT_EDITOR, deliver, failing_receiver, messages, run_action

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_papay_contract_changelist")
ACTIONS = {
    "presign": "presign_contract",
    "presign_mini_program": "presign_mini_program_contract",
    "query": "query_contract",
    "terminate": "terminate_contract",
}


@pytest.mark.parametrize("action, codename", ACTIONS.items())
def test_action_is_offered_only_with_its_own_permission(papay, staff_client, contract, action, codename):
    others = [c for c in ACTIONS.values() if c != codename]
    page = staff_client(*CONTRACT_EDITOR, *others).get(CHANGELIST).content.decode()
    assert f'value="{action}"' not in page
    assert f'value="{action}"' in staff_client(*CONTRACT_EDITOR, *others, codename).get(CHANGELIST).content.decode()


@pytest.mark.parametrize("action, codename", ACTIONS.items())
def test_action_cannot_be_posted_without_its_permission(papay, sandbox, staff_client, contract, action, codename):
    staff = staff_client(*CONTRACT_EDITOR)
    run_action(staff, Contract, action, [contract], confirm="yes", contract_termination_remark="x")
    assert sandbox.requests == []


def test_presign_mini_program_action(papay, sandbox, staff_client, contract):
    staff = staff_client(*CONTRACT_EDITOR, "presign_mini_program_contract")
    (text,) = messages(run_action(staff, Contract, "presign_mini_program", [contract]))
    contract.refresh_from_db()
    assert contract.presign_channel == "mini_program" and contract.pre_entrustweb_id in text
    page = staff.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "wxbd687630cd02ce1d" in page and contract.pre_entrustweb_id in page


def test_contract_page_shows_the_app_launch_parameters(papay, sandbox, staff_client, presigned_contract):
    change = reverse("admin:django_papay_contract_change", args=[presigned_contract.pk])
    page = staff_client(*CONTRACT_EDITOR).get(change).content.decode()
    assert "businessType = 12" in page
    assert f"{{&quot;pre_entrustweb_id&quot;: &quot;{presigned_contract.pre_entrustweb_id}&quot;}}" in page


def test_query_action_reports_each_state(papay, sandbox, staff_client, signed_contract):
    waiting = presign(Contract.objects.create(plan_id=12535, contract_display_account="b"))
    staff = staff_client(*CONTRACT_EDITOR, "query_contract")
    texts = messages(run_action(staff, Contract, "query", [signed_contract, waiting]))
    assert f"Contract {signed_contract.out_contract_code}: WeChat Pay says signed" in texts
    assert f"Contract {waiting.out_contract_code}: WeChat Pay says pre-signed" in texts


def test_query_action_failure_shows_wechatpay_code_and_message(papay, sandbox, staff_client, signed_contract):
    sandbox.answer_next(429, "RATELIMIT_EXCEEDED", "请求频率超限")
    staff = staff_client(*CONTRACT_EDITOR, "query_contract")
    (text,) = messages(run_action(staff, Contract, "query", [signed_contract]))
    assert "RATELIMIT_EXCEEDED" in text and "请求频率超限" in text


def test_terminate_asks_for_a_remark_before_calling(papay, sandbox, staff_client, signed_contract):
    sent = len(sandbox.requests)
    staff = staff_client(*CONTRACT_EDITOR, "terminate_contract")
    response = run_action(staff, Contract, "terminate", [signed_contract])
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="contract_termination_remark"' in page and signed_contract.out_contract_code in page
    assert len(sandbox.requests) == sent
    assert Contract.objects.get(pk=signed_contract.pk).status == Contract.Status.SIGNED


def test_terminate_confirmation_without_remark_sends_nothing(papay, sandbox, staff_client, signed_contract):
    sent = len(sandbox.requests)
    staff = staff_client(*CONTRACT_EDITOR, "terminate_contract")
    response = run_action(
        staff, Contract, "terminate", [signed_contract], confirm="yes", contract_termination_remark=""
    )
    assert 'class="errorlist' in response.content.decode()
    assert len(sandbox.requests) == sent


def test_terminate_confirmed_terminates(papay, sandbox, staff_client, signed_contract):
    staff = staff_client(*CONTRACT_EDITOR, "terminate_contract")
    response = run_action(
        staff, Contract, "terminate", [signed_contract], confirm="yes", contract_termination_remark="用户来电要求解约"
    )
    assert messages(response) == [f"Contract {signed_contract.out_contract_code}: terminated"]
    signed_contract.refresh_from_db()
    assert (signed_contract.status, signed_contract.termination_remark) == (
        Contract.Status.TERMINATED,
        "用户来电要求解约",
    )
    assert sandbox.requests[-1].json() == {"contract_termination_remark": "用户来电要求解约"}


def test_terminate_skips_contracts_that_are_not_signed(papay, sandbox, staff_client, signed_contract):
    unsigned = Contract.objects.create(plan_id=12535, contract_display_account="b")
    staff = staff_client(*CONTRACT_EDITOR, "terminate_contract")
    response = run_action(
        staff, Contract, "terminate", [signed_contract, unsigned], confirm="yes", contract_termination_remark="bye"
    )
    texts = messages(response)
    assert len(texts) == 2
    assert any(unsigned.out_contract_code in t and "only a signed contract" in t for t in texts)
    assert Contract.objects.get(pk=unsigned.pk).status == Contract.Status.CREATED


def test_bulk_presign_makes_its_calls_concurrently(papay, sandbox, staff_client):
    contracts = [Contract.objects.create(plan_id=12535, contract_display_account=str(i)) for i in range(20)]
    sandbox.response_delay = 0.2
    staff = staff_client(*CONTRACT_EDITOR, "presign_contract")
    started = time.monotonic()
    response = run_action(staff, Contract, "presign", contracts)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 * 20 * 0.2, f"20 pre-signs took {elapsed:.2f} s; sequential would be 4 s"
    assert len(messages(response)) == 20
    stored = {c.pre_entrustweb_id for c in Contract.objects.all()}
    assert stored == set(sandbox.presigns) and len(stored) == 20
    assert set(Contract.objects.values_list("status", flat=True)) == {"presigned"}


def test_reprocess_action_applies_a_failed_notification(papay, sandbox, staff_client, presigned_contract):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    with failing_receiver(contract_signed, RuntimeError("CRM down")):
        deliver(notification)
    failed = Notification.objects.get()
    assert failed.result == "failed"

    ops = staff_client("view_notification", "reprocess_notification")
    changelist = reverse("admin:django_papay_notification_changelist")
    assert 'value="reprocess"' in ops.get(changelist).content.decode()
    response = run_action(ops, Notification, "reprocess", [failed])
    assert messages(response) == [f"Notification {notification.id}: applied"]
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    assert Notification.objects.get().result == "applied"


def test_reprocess_is_hidden_without_its_permission(papay, staff_client):
    viewer = staff_client("view_notification")
    page = viewer.get(reverse("admin:django_papay_notification_changelist")).content.decode()
    assert 'value="reprocess"' not in page

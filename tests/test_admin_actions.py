"""Every contract action through the Django test client: permissions, the terminate confirmation, bulk speed."""

import time

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse

from django_papay.models import Contract, Notification
from django_papay.services import presign, query

from .conftest import deliver

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_papay_contract_changelist")
ACTIONS = {
    "presign": "presign_contract",
    "presign_mini_program": "presign_mini_program_contract",
    "query": "query_contract",
    "terminate": "terminate_contract",
}


def _login(client, *codenames):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="django_papay", codename__in=("view_contract", "change_contract", *codenames)
    ))
    client.force_login(user)
    return client


def _post(client, action, contracts, **extra):
    data = {"action": action, "_selected_action": [c.pk for c in contracts], **extra}
    return client.post(CHANGELIST, data, follow=True)


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def signed(papay, sandbox):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a"))
    sandbox.sign_contract(contract.out_contract_code, drop=True)
    return query(contract)


@pytest.mark.parametrize("action, codename", ACTIONS.items())
def test_action_is_offered_only_with_its_own_permission(papay, client, action, codename):
    Contract.objects.create(plan_id=1, contract_display_account="a")
    others = [c for c in ACTIONS.values() if c != codename]
    page = _login(client, *others).get(CHANGELIST).content.decode()
    assert f'value="{action}"' not in page
    User.objects.get(username="staff").user_permissions.add(Permission.objects.get(codename=codename))
    assert f'value="{action}"' in client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize("action, codename", ACTIONS.items())
def test_action_cannot_be_posted_without_its_permission(papay, sandbox, client, action, codename):
    contract = Contract.objects.create(plan_id=1, contract_display_account="a")
    _post(_login(client), action, [contract], confirm="yes", contract_termination_remark="x")
    assert sandbox.requests == []


def test_presign_mini_program_action(papay, sandbox, client):
    contract = Contract.objects.create(plan_id=12535, contract_display_account="a")
    (text,) = _messages(_post(_login(client, "presign_mini_program_contract"), "presign_mini_program", [contract]))
    contract.refresh_from_db()
    assert contract.presign_channel == "mini_program" and contract.pre_entrustweb_id in text
    page = client.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "wxbd687630cd02ce1d" in page and contract.pre_entrustweb_id in page


def test_contract_page_shows_the_app_launch_parameters(papay, sandbox, client):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a"))
    page = _login(client).get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "businessType = 12" in page
    assert f"{{&quot;pre_entrustweb_id&quot;: &quot;{contract.pre_entrustweb_id}&quot;}}" in page


def test_query_action_reports_each_state(papay, sandbox, client, signed):
    waiting = presign(Contract.objects.create(plan_id=12535, contract_display_account="b"))
    texts = _messages(_post(_login(client, "query_contract"), "query", [signed, waiting]))
    assert f"Contract {signed.out_contract_code}: WeChat Pay says signed" in texts
    assert f"Contract {waiting.out_contract_code}: WeChat Pay says pre-signed" in texts


def test_query_action_failure_shows_wechatpay_code_and_message(papay, sandbox, client, signed):
    sandbox.answer_next(429, "RATELIMIT_EXCEEDED", "请求频率超限")
    (text,) = _messages(_post(_login(client, "query_contract"), "query", [signed]))
    assert "RATELIMIT_EXCEEDED" in text and "请求频率超限" in text


def test_terminate_asks_for_a_remark_before_calling(papay, sandbox, client, signed):
    sent = len(sandbox.requests)
    response = _post(_login(client, "terminate_contract"), "terminate", [signed])
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="contract_termination_remark"' in page and signed.out_contract_code in page
    assert len(sandbox.requests) == sent
    assert Contract.objects.get(pk=signed.pk).status == Contract.Status.SIGNED


def test_terminate_confirmation_without_remark_sends_nothing(papay, sandbox, client, signed):
    sent = len(sandbox.requests)
    response = _post(_login(client, "terminate_contract"), "terminate", [signed], confirm="yes",
                     contract_termination_remark="")
    assert 'class="errorlist' in response.content.decode()
    assert len(sandbox.requests) == sent


def test_terminate_confirmed_terminates(papay, sandbox, client, signed):
    response = _post(_login(client, "terminate_contract"), "terminate", [signed], confirm="yes",
                     contract_termination_remark="用户来电要求解约")
    assert _messages(response) == [f"Contract {signed.out_contract_code}: terminated"]
    signed.refresh_from_db()
    assert (signed.status, signed.termination_remark) == (Contract.Status.TERMINATED, "用户来电要求解约")
    assert sandbox.requests[-1].json() == {"contract_termination_remark": "用户来电要求解约"}


def test_terminate_skips_contracts_that_are_not_signed(papay, sandbox, client, signed):
    unsigned = Contract.objects.create(plan_id=12535, contract_display_account="b")
    texts = _messages(_post(_login(client, "terminate_contract"), "terminate", [signed, unsigned], confirm="yes",
                            contract_termination_remark="bye"))
    assert len(texts) == 2
    assert any(unsigned.out_contract_code in t and "only a signed contract" in t for t in texts)
    assert Contract.objects.get(pk=unsigned.pk).status == Contract.Status.CREATED


def test_bulk_presign_makes_its_calls_concurrently(papay, sandbox, client):
    contracts = [Contract.objects.create(plan_id=12535, contract_display_account=str(i)) for i in range(20)]
    sandbox.response_delay = 0.2
    _login(client, "presign_contract")
    started = time.monotonic()
    response = _post(client, "presign", contracts)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 * 20 * 0.2, f"20 pre-signs took {elapsed:.2f} s; sequential would be 4 s"
    assert len(_messages(response)) == 20
    stored = {c.pre_entrustweb_id for c in Contract.objects.all()}
    assert stored == set(sandbox.presigns) and len(stored) == 20
    assert set(Contract.objects.values_list("status", flat=True)) == {"presigned"}


def test_reprocess_action_applies_a_failed_notification(papay, sandbox, client):
    from django_papay.signals import contract_signed

    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a"))
    notification = sandbox.sign_notification(contract.out_contract_code)

    def broken(**kwargs):
        raise RuntimeError("CRM down")

    contract_signed.connect(broken)
    try:
        deliver(notification)
    finally:
        contract_signed.disconnect(broken)
    failed = Notification.objects.get()
    assert failed.result == "failed"

    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_notification",
                                                                       "reprocess_notification"]))
    client.force_login(user)
    changelist = reverse("admin:django_papay_notification_changelist")
    assert 'value="reprocess"' in client.get(changelist).content.decode()
    response = client.post(changelist, {"action": "reprocess", "_selected_action": [failed.pk]}, follow=True)
    assert _messages(response) == [f"Notification {notification.id}: applied"]
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.SIGNED
    assert Notification.objects.get().result == "applied"


def test_reprocess_is_hidden_without_its_permission(papay, client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_notification"))
    client.force_login(user)
    page = client.get(reverse("admin:django_papay_notification_changelist")).content.decode()
    assert 'value="reprocess"' not in page

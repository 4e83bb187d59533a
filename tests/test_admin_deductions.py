"""Deductions through the admin: charge from the contracts, settle and reverse, each behind its own permission."""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse

from django_papay import wechatpay
from django_papay.models import Contract, Deduction
from django_papay.services import deduct, presign, query

pytestmark = pytest.mark.django_db

CONTRACTS = reverse("admin:django_papay_contract_changelist")
DEDUCTIONS = reverse("admin:django_papay_deduction_changelist")
MEMBERSHIP = {"sub_mchid": "1900000201", "description": "会员月费", "amount": 1500}
VIEW = ("view_contract", "change_contract", "delete_contract", "view_deduction")


def _login(client, *codenames):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="django_papay", codename__in=(*VIEW, *codenames)
    ))
    client.force_login(user)
    return client


def _post(client, url, action, objects, **extra):
    data = {"action": action, "_selected_action": [o.pk for o in objects], **extra}
    return client.post(url, data, follow=True)


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def signed(papay, sandbox):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="138****8888"))
    sandbox.sign_contract(contract.out_contract_code, drop=True)
    return query(contract)


@pytest.mark.parametrize("url, action, codename", [
    (CONTRACTS, "deduct", "deduct_contract"),
    (DEDUCTIONS, "settle", "settle_deduction"),
    (DEDUCTIONS, "reverse", "reverse_deduction"),
])
def test_each_action_is_offered_and_postable_only_with_its_permission(signed, sandbox, client, url, action, codename):
    deduction = deduct(signed, [MEMBERSHIP])
    _login(client, "deduct_contract", "settle_deduction", "reverse_deduction")
    User.objects.get().user_permissions.remove(Permission.objects.get(codename=codename))
    assert f'value="{action}"' not in client.get(url).content.decode()
    sent = len(sandbox.requests)
    target = signed if url == CONTRACTS else deduction
    _post(client, url, action, [target], confirm="yes", sub_mchid="1900000201", description="x", amount="1.00")
    assert len(sandbox.requests) == sent and Deduction.objects.count() == 1
    User.objects.get().user_permissions.add(Permission.objects.get(codename=codename))
    assert f'value="{action}"' in client.get(url).content.decode()


def test_deduct_asks_for_the_sub_order_then_charges_in_fen(signed, sandbox, client):
    _login(client, "deduct_contract")
    page = _post(client, CONTRACTS, "deduct", [signed]).content.decode()
    assert "Charge contracts with WeChat Pay" in page and 'name="amount"' in page and not sandbox.deductions.posts
    response = _post(client, CONTRACTS, "deduct", [signed], confirm="yes", sub_mchid="1900000201",
                     description="会员月费", amount="15.00")
    deduction = Deduction.objects.get()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert [s.amount for s in deduction.sub_orders.all()] == [1500]
    (message,) = _messages(response)
    assert "¥15.00" in message and "succeeded" in message
    assert deduction.sub_orders.get().transaction_id in message


def test_deduct_with_a_bad_amount_sends_nothing(signed, sandbox, client):
    _login(client, "deduct_contract")
    page = _post(client, CONTRACTS, "deduct", [signed], confirm="yes", sub_mchid="1900000201",
                 description="x", amount="15.001").content.decode()
    assert "errorlist" in page and not Deduction.objects.exists() and not sandbox.deductions.posts


def test_deduct_skips_contracts_that_are_not_signed(signed, sandbox, client, papay):
    other = Contract.objects.create(plan_id=12535, contract_display_account="other")
    _login(client, "deduct_contract")
    response = _post(client, CONTRACTS, "deduct", [signed, other], confirm="yes", sub_mchid="1900000201",
                     description="x", amount="1.00")
    assert Deduction.objects.get().contract == signed
    assert any("not charged" in m and str(other) in m for m in _messages(response))


def test_deduct_whose_outcome_is_unknown_says_so(signed, sandbox, client):
    sandbox.fail_next("system_error_after")
    _login(client, "deduct_contract")
    response = _post(client, CONTRACTS, "deduct", [signed], confirm="yes", sub_mchid="1900000201",
                     description="x", amount="1.00")
    (message,) = _messages(response)
    assert "processing" in message and "not known yet" in message and "SYSTEM_ERROR" in message


def test_settle_action_settles_and_reports(signed, sandbox, client, papay):
    papay["DEDUCT_TIMEOUT"] = 0.3
    sandbox.fault_delay = 1.0
    sandbox.fail_next("timeout")
    deduction = deduct(signed, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    _login(client, "settle_deduction")
    response = _post(client, DEDUCTIONS, "settle", [deduction])
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert any("succeeded" in m for m in _messages(response))


def test_reverse_goes_through_a_confirmation_page(signed, sandbox, client):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed, [MEMBERSHIP])
    _login(client, "reverse_deduction")
    page = _post(client, DEDUCTIONS, "reverse", [deduction]).content.decode()
    reverse_path = wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction)
    assert "Reverse at WeChat Pay" in page and not [r for r in sandbox.requests if r.path == reverse_path]
    response = _post(client, DEDUCTIONS, "reverse", [deduction], confirm="yes")
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.REVERSED
    assert any("reversed" in m for m in _messages(response))


def test_deduction_pages_show_yuan_and_sub_orders(signed, sandbox, client):
    deduction = deduct(signed, [MEMBERSHIP, {**MEMBERSHIP, "sub_mchid": "1900000202", "amount": 300}])
    _login(client)
    listing = client.get(DEDUCTIONS).content.decode()
    assert deduction.combine_out_trade_no in listing and "¥18.00" in listing
    page = client.get(reverse("admin:django_papay_deduction_change", args=[deduction.pk])).content.decode()
    for sub_order in deduction.sub_orders.all():
        assert sub_order.transaction_id in page and sub_order.out_trade_no in page
    assert "¥15.00" in page and "¥3.00" in page
    found = client.get(DEDUCTIONS, {"q": deduction.sub_orders.first().transaction_id}).content.decode()
    assert deduction.combine_out_trade_no in found


def test_a_contract_with_deductions_cannot_be_deleted_from_the_admin(signed, sandbox, client):
    deduct(signed, [MEMBERSHIP])
    _login(client)
    client.post(reverse("admin:django_papay_contract_delete", args=[signed.pk]), {"post": "yes"})
    assert Contract.objects.filter(pk=signed.pk).exists()

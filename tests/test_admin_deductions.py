"""Deductions through the admin: charge from the contracts, settle and reverse, each behind its own permission."""

import pytest
from django.urls import reverse

from django_papay import wechatpay
from django_papay.display import local_time
from django_papay.models import Contract, Deduction
from django_papay.services import deduct

from .helpers import MEMBERSHIP, confirm_action, messages, run_action, sub_order_fields

pytestmark = pytest.mark.django_db

CONTRACTS = reverse("admin:django_papay_contract_changelist")
DEDUCTIONS = reverse("admin:django_papay_deduction_changelist")
VIEW = ("view_contract", "change_contract", "delete_contract", "view_deduction")
# The deduct confirmation page's form, as staff fill it in (also harmless for the other actions' confirmation).
ROW = {"sub_mchid": "1900000201", "description": "x", "amount": "1.00"}
DEDUCTION_ACTIONS = ("deduct_contract", "settle_deduction", "reverse_deduction")


def _charge(staff, contracts, *rows, **row):
    """Run the contracts' deduct action and confirm its page with one sub-order (``row`` over ROW), or ``rows``."""
    return confirm_action(staff, CONTRACTS, "deduct", contracts, **sub_order_fields(*(rows or [{**ROW, **row}])))


@pytest.mark.parametrize(
    "url, action, codename",
    [
        (CONTRACTS, "deduct", "deduct_contract"),
        (DEDUCTIONS, "settle", "settle_deduction"),
        (DEDUCTIONS, "reverse", "reverse_deduction"),
    ],
)
def test_each_action_is_offered_and_postable_only_with_its_permission(
    signed_contract, sandbox, staff_client, url, action, codename
):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    without = staff_client(*VIEW, *(other for other in DEDUCTION_ACTIONS if other != codename))
    assert f'value="{action}"' not in without.get(url).content.decode()
    sent = len(sandbox.requests)
    target = signed_contract if url == CONTRACTS else deduction
    run_action(without, url, action, [target], confirm="yes", **sub_order_fields(ROW))
    assert len(sandbox.requests) == sent and Deduction.objects.count() == 1
    assert f'value="{action}"' in staff_client(*VIEW, codename).get(url).content.decode()


def test_deduct_asks_for_the_sub_order_then_charges_in_fen(signed_contract, sandbox, staff_client):
    staff = staff_client(*VIEW, "deduct_contract")
    page = run_action(staff, CONTRACTS, "deduct", [signed_contract]).content.decode()
    assert "Charge contracts with WeChat Pay" in page and 'name="sub_orders-0-amount"' in page
    assert not sandbox.deductions.posts
    response = _charge(staff, [signed_contract], amount="15.00", description="会员月费")
    deduction = Deduction.objects.get()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert [s.amount for s in deduction.sub_orders.all()] == [1500]
    (message,) = messages(response)
    assert "¥15.00" in message and "succeeded" in message
    assert deduction.sub_orders.get().transaction_id in message


def test_deduct_charges_several_sub_merchants_in_one_combined_order(signed_contract, sandbox, staff_client):
    staff = staff_client(*VIEW, "deduct_contract")
    rows = [{"sub_mchid": f"19000002{n:02d}", "description": f"fee {n}", "amount": f"{n}.50"} for n in range(1, 4)]
    (message,) = messages(_charge(staff, [signed_contract], *rows))
    deduction = Deduction.objects.get()
    assert [(s.sub_mchid, s.amount) for s in deduction.sub_orders.order_by("pk")] == [
        ("1900000201", 150),
        ("1900000202", 250),
        ("1900000203", 350),
    ]
    assert deduction.status == Deduction.Status.SUCCEEDED and "¥7.50" in message
    assert len(sandbox.deductions.posts) == 1  # one 合单 call for the three


def test_deduct_page_shows_the_total_of_its_sub_orders(signed_contract, sandbox, staff_client):
    staff = staff_client(*VIEW, "deduct_contract")
    rows = [{**ROW, "amount": "1,000.00"}, {**ROW, "sub_mchid": "1900000202", "amount": "2.25"}]
    page = _charge(staff, [signed_contract], *rows).content.decode()  # 1,000.00 is refused: a bad number
    assert "errorlist" in page and 'id="papay-total">¥2.25<' in page and not Deduction.objects.exists()


def test_deduct_takes_at_most_50_sub_orders(signed_contract, sandbox, staff_client):
    staff = staff_client(*VIEW, "deduct_contract")
    rows = [{**ROW, "sub_mchid": f"{1900000000 + n}"} for n in range(51)]
    page = _charge(staff, [signed_contract], *rows).content.decode()
    assert "errorlist" in page and "50" in page and not Deduction.objects.exists() and not sandbox.deductions.posts


def test_deduct_with_a_bad_amount_sends_nothing(signed_contract, sandbox, staff_client):
    staff = staff_client(*VIEW, "deduct_contract")
    page = _charge(staff, [signed_contract], amount="15.001").content.decode()
    assert "errorlist" in page and not Deduction.objects.exists() and not sandbox.deductions.posts


def test_deduct_skips_contracts_that_are_not_signed(signed_contract, sandbox, staff_client, papay):
    other = Contract.objects.create(plan_id=12535, contract_display_account="other")
    staff = staff_client(*VIEW, "deduct_contract")
    response = _charge(staff, [signed_contract, other], amount="1.00")
    assert Deduction.objects.get().contract == signed_contract
    assert any("not charged" in m and str(other) in m for m in messages(response))


def test_deduct_whose_outcome_is_unknown_says_so(signed_contract, sandbox, staff_client):
    sandbox.fail_next("system_error_after")
    staff = staff_client(*VIEW, "deduct_contract")
    response = _charge(staff, [signed_contract], amount="1.00")
    (message,) = messages(response)
    assert "processing" in message and "not known yet" in message and "SYSTEM_ERROR" in message


def test_settle_action_settles_and_reports(signed_contract, sandbox, staff_client, papay):
    papay["DEDUCT_TIMEOUT"] = 0.3
    sandbox.fault_delay = 1.0
    sandbox.fail_next("timeout")
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    staff = staff_client(*VIEW, "settle_deduction")
    response = run_action(staff, DEDUCTIONS, "settle", [deduction])
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert any("succeeded" in m for m in messages(response))


def test_settling_a_charge_wechatpay_has_not_received_says_when_it_fails(signed_contract, sandbox, staff_client):
    sandbox.fail_next("system_error")  # refused before WeChat Pay took it: no order there
    deduction = deduct(signed_contract, [MEMBERSHIP])
    staff = staff_client(*VIEW, "settle_deduction")
    (message,) = messages(run_action(staff, DEDUCTIONS, "settle", [deduction]))
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.PROCESSING  # within WeChat Pay's minute: it may still arrive
    assert "not known yet" not in message and "has not received this charge" in message
    assert f"becomes failed after {local_time(deduction.reachable_until + wechatpay.DEDUCT_WINDOW)}" in message


def test_reverse_goes_through_a_confirmation_page(signed_contract, sandbox, staff_client):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP])
    staff = staff_client(*VIEW, "reverse_deduction")
    page = run_action(staff, DEDUCTIONS, "reverse", [deduction]).content.decode()
    reverse_path = wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction)
    assert "Reverse at WeChat Pay" in page and not [r for r in sandbox.requests if r.path == reverse_path]
    response = run_action(staff, DEDUCTIONS, "reverse", [deduction], confirm="yes")
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.REVERSED
    assert any("reversed" in m for m in messages(response))


def test_deduction_pages_show_yuan_and_sub_orders(signed_contract, sandbox, staff_client):
    deduction = deduct(signed_contract, [MEMBERSHIP, {**MEMBERSHIP, "sub_mchid": "1900000202", "amount": 300}])
    staff = staff_client(*VIEW)
    listing = staff.get(DEDUCTIONS).content.decode()
    assert deduction.combine_out_trade_no in listing and "¥18.00" in listing
    page = staff.get(reverse("admin:django_papay_deduction_change", args=[deduction.pk])).content.decode()
    for sub_order in deduction.sub_orders.all():
        assert sub_order.transaction_id in page and sub_order.out_trade_no in page
    assert "¥15.00" in page and "¥3.00" in page
    found = staff.get(DEDUCTIONS, {"q": deduction.sub_orders.first().transaction_id}).content.decode()
    assert deduction.combine_out_trade_no in found


def test_a_contract_with_deductions_cannot_be_deleted_from_the_admin(signed_contract, sandbox, staff_client):
    deduct(signed_contract, [MEMBERSHIP])
    staff = staff_client(*VIEW)
    staff.post(reverse("admin:django_papay_contract_delete", args=[signed_contract.pk]), {"post": "yes"})
    assert Contract.objects.filter(pk=signed_contract.pk).exists()

"""Refund rows of the day's bill against our refunds, over real HTTP to the sandbox: a balanced day with a
refund, each discrepancy kind with its numbers, a processing refund the bill shows refunded settled and reported
fixed, and a charge at 23:59:59 with its refund at 00:00:01 in two days' bills."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from django_papay import wechatpay
from django_papay.models import Discrepancy, Reconciliation, Refund
from django_papay.services import deduct, reconcile, refund, settle_refund

from .helpers import MEMBERSHIP

pytestmark = pytest.mark.django_db


def today():
    return timezone.now().astimezone(wechatpay.BEIJING).date()


@pytest.fixture
def sub_order(signed_contract, sandbox, papay):
    """A paid sub-order of today: ¥15.00."""
    return deduct(signed_contract, [MEMBERSHIP]).sub_orders.get()


@pytest.fixture
def refunded(sub_order):
    """A refund of ¥5.00, succeeded (its notification lost, a query learnt it)."""
    made = settle_refund(refund(sub_order, 500, out_refund_no="R20261202REC1"))
    assert made.status == Refund.Status.SUCCEEDED
    return made


def test_a_day_with_a_refund_the_bill_agrees_on_is_balanced(refunded):
    report = reconcile(today())
    assert report.status == Reconciliation.Status.BALANCED, list(report.discrepancies.values())
    assert (report.refunds_theirs, report.refunds_amount_theirs) == (1, 500)
    assert (report.refunds_ours, report.refunds_amount_ours) == (1, 500)
    assert (report.payments_theirs, report.bill_rows, report.fees_theirs) == (1, 2, 9 - 3)


def test_a_refund_only_wechat_pay_has_is_missing_here(refunded):
    refund_id = refunded.refund_id
    Refund.objects.filter(pk=refunded.pk).delete()  # as if it had been made twice, and we kept one
    (found,) = reconcile(today()).discrepancies.all()
    assert (found.kind, found.row) == (Discrepancy.Kind.MISSING_HERE, Discrepancy.Row.REFUND)
    assert (found.out_refund_no, found.refund_id, found.amount_theirs, found.amount_ours) == (
        "R20261202REC1",
        refund_id,
        500,
        None,
    )


def test_a_refund_here_the_bill_lacks_is_missing_there(sub_order):
    ghost = Refund.objects.create(
        sub_order=sub_order, amount=200, status=Refund.Status.SUCCEEDED, sent_at=timezone.now()
    )
    report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.row, found.out_refund_no) == (
        Discrepancy.Kind.MISSING_THERE,
        Discrepancy.Row.REFUND,
        ghost.out_refund_no,
    )
    assert (found.amount_ours, found.amount_theirs, found.out_trade_no) == (200, None, sub_order.out_trade_no)
    assert (report.refunds_ours, report.refunds_amount_ours, report.refunds_theirs) == (1, 200, 0)


def test_a_refund_amount_that_differs_is_reported(refunded):
    Refund.objects.filter(pk=refunded.pk).update(amount=501)
    (found,) = reconcile(today()).discrepancies.all()
    assert (found.kind, found.row, found.amount_ours, found.amount_theirs) == (
        Discrepancy.Kind.AMOUNT,
        Discrepancy.Row.REFUND,
        501,
        500,
    )


def test_a_processing_refund_the_bill_shows_refunded_is_settled_and_reported_fixed(sub_order, sandbox):
    made = refund(sub_order, 300)  # accepted; refunded at WeChat Pay, its notification never came
    assert made.status == Refund.Status.PROCESSING
    report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.row, found.state_ours, found.state_theirs) == (
        Discrepancy.Kind.STATE,
        Discrepancy.Row.REFUND,
        "processing",
        "SUCCESS",
    )
    assert found.fixed and report.fixed_count == 1
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED
    assert (report.refunds_ours, report.refunds_amount_ours) == (1, 300)


def test_a_charge_at_235959_and_its_refund_at_000001_land_in_two_days(signed_contract, sandbox, papay):
    day = today() - timedelta(days=3)
    midnight = datetime(day.year, day.month, day.day, tzinfo=wechatpay.BEIJING) + timedelta(days=1)
    sandbox.deductions.paid_at = midnight - timedelta(seconds=1)
    sub_order = deduct(signed_contract, [MEMBERSHIP]).sub_orders.get()
    sandbox.refunds.accepted_at = midnight + timedelta(seconds=1)
    made = settle_refund(refund(sub_order, 1500))
    Refund.objects.filter(pk=made.pk).update(sent_at=midnight + timedelta(seconds=1))  # our clock then
    first, second = reconcile(day), reconcile(day + timedelta(days=1))
    assert (first.status, second.status) == (Reconciliation.Status.BALANCED, Reconciliation.Status.BALANCED)
    assert (first.payments_theirs, first.refunds_theirs, first.payments_ours, first.refunds_ours) == (1, 0, 1, 0)
    assert (second.payments_theirs, second.refunds_theirs, second.payments_ours, second.refunds_ours) == (0, 1, 0, 1)
    assert second.refunds_amount_theirs == 1500

"""Which of our rows a reconciled day holds (``bill_match.paid_on`` / ``refunded_on``): a sub-order by when it was
paid, or, with no time from WeChat Pay, by when its charge was settled; a refund by when it was sent, or, never
sent, by when it was made. Each as its own indexed query, read with no ORDER BY (benchmarks/platform_scale.py
prints their plans); and a day's bill that lacks such a row reports it missing there."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_papay import wechatpay
from django_papay.models import Deduction, Discrepancy, Refund, SubOrder
from django_papay.services import deduct, reconcile
from django_papay.services.bill_match import paid_on, read, refunded_on

from .helpers import MCHID, MEMBERSHIP

pytestmark = pytest.mark.django_db

DAY = timezone.now().astimezone(wechatpay.BEIJING).date() - timedelta(days=2)
NOON = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=wechatpay.BEIJING)
OTHER_DAY = NOON + timedelta(days=1)


def sub_order(contract, *, status=Deduction.Status.SUCCEEDED, paid=None, settled=None, sub_mchid="1900000201"):
    deduction = Deduction.objects.create(contract=contract, status=status, settled_at=settled)
    return SubOrder.objects.create(
        deduction=deduction, mchid=MCHID, sub_mchid=sub_mchid, description="月费", amount=1500, success_time=paid
    )


def listed(querysets) -> list[set[int]]:
    return [set(queryset.values_list("pk", flat=True)) for queryset in querysets]


def test_a_sub_order_is_of_the_day_it_was_paid_or_without_a_time_the_day_its_charge_settled(signed_contract):
    paid = sub_order(signed_contract, paid=NOON, settled=OTHER_DAY)
    settled = sub_order(signed_contract, settled=NOON)
    sub_order(signed_contract, paid=OTHER_DAY, settled=NOON)  # paid the next day: that day's
    sub_order(signed_contract, settled=OTHER_DAY)
    sub_order(signed_contract, status=Deduction.Status.FAILED, paid=NOON, settled=NOON)
    other_shop = sub_order(signed_contract, paid=NOON, sub_mchid="1900000202")
    assert listed(paid_on(DAY)) == [{paid.pk, other_shop.pk}, {settled.pk}]
    assert listed(paid_on(DAY, "1900000202")) == [{other_shop.pk}, set()]


def test_a_refund_is_of_the_day_it_was_sent_or_never_sent_the_day_it_was_made(signed_contract):
    charged = sub_order(signed_contract, paid=NOON)
    made = {
        name: Refund.objects.create(sub_order=charged, amount=100, status=status, sent_at=sent)
        for name, status, sent in [
            ("sent", Refund.Status.SUCCEEDED, NOON),
            ("unsent", Refund.Status.SUCCEEDED, None),
            ("sent the next day", Refund.Status.SUCCEEDED, OTHER_DAY),
            ("failed", Refund.Status.FAILED, NOON),
        ]
    }
    Refund.objects.filter(pk__in=[refund.pk for refund in made.values()]).update(created_at=NOON)
    assert listed(refunded_on(DAY)) == [{made["sent"].pk}, {made["unsent"].pk}]
    assert listed(refunded_on(DAY, "1900000202")) == [set(), set()]


def test_a_settled_charge_with_no_time_of_payment_that_the_bill_lacks_is_missing_there(signed_contract, sandbox, papay):
    deduct(signed_contract, [MEMBERSHIP])  # today's bill at the sandbox: this one charge
    lacking = sub_order(signed_contract, settled=timezone.now())
    report = reconcile(timezone.now().astimezone(wechatpay.BEIJING).date())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.out_trade_no, found.amount_ours) == (
        Discrepancy.Kind.MISSING_THERE,
        lacking.out_trade_no,
        1500,
    )
    assert (report.payments_ours, report.payments_amount_ours) == (2, 3000)


def test_a_day_is_read_without_an_order_by_which_would_let_a_cursor_walk_the_whole_table(signed_contract):
    sub_order(signed_contract, paid=NOON)
    with CaptureQueriesContext(connection) as queries:
        for rows in (*paid_on(DAY), *refunded_on(DAY)):
            list(read(rows.values_list("pk", "amount")))
    day_queries = [
        query["sql"]
        for query in queries.captured_queries
        if "success_time" in query["sql"] or "sent_at" in query["sql"]
    ]
    assert len(day_queries) == 4 and not any("ORDER BY" in sql for sql in day_queries)

"""Refunding a charged sub-order over real HTTP to the sandbox: exactly once, never over its amount, one number."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from django_papay import wechatpay
from django_papay.exceptions import InsideAtomicBlock
from django_papay.models import Deduction, Refund
from django_papay.services import deduct, refund, settle_refund
from django_papay.signals import refund_failed, refund_succeeded

from .helpers import MEMBERSHIP, NOTIFY_URL, SignalRecorder

pytestmark = pytest.mark.django_db

DELIVERY = {"sub_mchid": "1900000202", "description": "配送费", "amount": 300}


@pytest.fixture
def charged(signed_contract, sandbox):
    """A SUCCEEDED deduction of two sub-orders: ¥15.00 and ¥3.00."""
    deduction = deduct(signed_contract, [MEMBERSHIP, DELIVERY])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction


@pytest.fixture
def membership(charged):
    return charged.sub_orders.get(sub_mchid="1900000201")


@pytest.fixture
def refunds():
    """refund_succeeded and refund_failed as sent: ``("succeeded" | "failed", refund pk, notification)``."""
    with SignalRecorder(succeeded=refund_succeeded, failed=refund_failed) as received:
        yield received


def applies(sandbox):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == wechatpay.REFUND_APPLY_PATH]


def queries(sandbox):
    return [r for r in sandbox.requests if r.method == "GET" and r.path.startswith(wechatpay.REFUNDS)]


# --- the request ----------------------------------------------------------------------------------


def test_refund_sends_exactly_the_documented_json(membership, sandbox, papay):
    made = refund(membership, 500, reason="商品退货", out_refund_no="R20261202A1")
    (sent,) = applies(sandbox)
    assert sent.json() == {
        "sub_mchid": "1900000201",
        "sp_appid": papay["APPID"],
        "transaction_id": membership.transaction_id,
        "out_refund_no": "R20261202A1",
        "reason": "商品退货",
        "amount": {"refund": 500, "total": 1500, "currency": "CNY"},
        "notify_url": NOTIFY_URL,
    }
    assert made.status == Refund.Status.PROCESSING and made.refund_id.startswith("5030")


def test_refund_notify_url_setting_is_sent_instead(membership, sandbox, papay):
    papay["REFUND_NOTIFY_URL"] = "https://merchant.example/papay/refunds/"
    refund(membership, 100)
    assert applies(sandbox)[0].json()["notify_url"] == "https://merchant.example/papay/refunds/"


def test_an_advanced_refund_says_so(membership, sandbox):
    refund(membership, 100, advance=True)
    assert applies(sandbox)[0].json()["refund_account"] == wechatpay.REFUND_SOURCE_PARTNER_ADVANCE


# --- partial and full ---------------------------------------------------------------------------------


def test_a_partial_refund_is_accepted_then_settled_succeeded_with_its_signal_once(membership, sandbox, refunds):
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and refunds == []  # accepted is not refunded
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and made.success_time is not None
    assert made.channel == "ORIGINAL" and made.user_received_account
    settle_refund(made)  # final: no query, no second signal
    assert refunds == [("succeeded", made.pk, None)] and len(queries(sandbox)) == 1
    membership.refresh_from_db()
    assert membership.refunded_amount == 500 and membership.refundable_amount == 1000


def test_a_full_refund_in_two_parts_leaves_nothing_refundable(membership, sandbox):
    first, second = refund(membership, 1000), refund(membership, 500)
    for made in (first, second):
        settle_refund(made)
    assert membership.refundable_amount == 0 and membership.refunded_amount == 1500
    assert sandbox.refunds.posts == {first.out_refund_no: 1, second.out_refund_no: 1}
    with pytest.raises(ValidationError, match="can still be refunded"):
        refund(membership, 1)


def test_the_same_number_again_returns_the_stored_refund_and_sends_nothing(membership, sandbox):
    made = refund(membership, 300, out_refund_no="R-ONCE")
    again = refund(membership, 300, out_refund_no="R-ONCE")
    assert again.pk == made.pk and len(applies(sandbox)) == 1


def test_the_same_number_for_another_amount_is_refused(membership, sandbox):
    refund(membership, 300, out_refund_no="R-ONCE")
    with pytest.raises(ValidationError, match="already used"):
        refund(membership, 301, out_refund_no="R-ONCE")
    assert Refund.objects.count() == 1 and len(applies(sandbox)) == 1


def test_the_same_number_for_another_sub_order_is_refused(charged, membership, sandbox):
    delivery = charged.sub_orders.get(sub_mchid=DELIVERY["sub_mchid"])
    refund(membership, 300, out_refund_no="R-ONCE")
    with pytest.raises(ValidationError, match="already used"):
        refund(delivery, 300, out_refund_no="R-ONCE")
    assert Refund.objects.get().sub_order == membership and len(applies(sandbox)) == 1


# --- refused before anything is stored or sent -----------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [0, -1, 1501, 3.0, Decimal("3.00"), "300", True, None],
    ids=repr,
)
def test_bad_amounts_are_refused_with_nothing_stored_or_sent(membership, sandbox, amount):
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError):
        refund(membership, amount)
    assert not Refund.objects.exists() and len(sandbox.requests) == sent_before


@pytest.mark.parametrize(
    "options",
    [
        {"reason": "x" * 81},
        {"reason": "bad\x00"},
        {"reason": 42},
        {"out_refund_no": "has space"},
        {"out_refund_no": "x" * 65},
        {"out_refund_no": 12},
        {"advance": "yes"},
    ],
    ids=repr,
)
def test_bad_options_are_refused_with_nothing_stored_or_sent(membership, sandbox, options):
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError):
        refund(membership, 100, **options)
    assert not Refund.objects.exists() and len(sandbox.requests) == sent_before


def test_over_refund_is_refused_with_nothing_sent(membership, sandbox):
    refund(membership, 1000)
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError, match="Only 500 fen"):
        refund(membership, 501)
    assert Refund.objects.count() == 1 and len(sandbox.requests) == sent_before


@pytest.mark.parametrize("status", [Deduction.Status.PROCESSING, Deduction.Status.FAILED, Deduction.Status.REVERSED])
def test_a_sub_order_of_an_unpaid_or_failed_deduction_is_refused(membership, charged, sandbox, status):
    Deduction.objects.filter(pk=charged.pk).update(status=status)
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError, match="only a succeeded charge"):
        refund(membership, 100)
    assert not Refund.objects.exists() and len(sandbox.requests) == sent_before


def test_a_51st_refund_is_refused(membership, sandbox):
    Refund.objects.bulk_create(
        [Refund(sub_order=membership, amount=1, status=Refund.Status.SUCCEEDED) for _ in range(wechatpay.MAX_REFUNDS)]
    )
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError, match="50 refunds"):
        refund(membership, 1)
    assert Refund.objects.count() == wechatpay.MAX_REFUNDS and len(sandbox.requests) == sent_before


def test_a_sub_order_paid_over_a_year_ago_is_refused(membership, sandbox):
    from datetime import timedelta

    from django.utils import timezone

    from django_papay.models import SubOrder

    SubOrder.objects.filter(pk=membership.pk).update(success_time=timezone.now() - timedelta(days=366))
    with pytest.raises(ValidationError, match="over a year ago"):
        refund(membership, 100)
    assert not Refund.objects.exists() and not applies(sandbox)


def test_failed_and_closed_refunds_do_not_count_against_the_amount(membership, sandbox):
    Refund.objects.create(sub_order=membership, amount=1500, status=Refund.Status.FAILED)
    Refund.objects.create(sub_order=membership, amount=1500, status=Refund.Status.CLOSED)
    assert refund(membership, 1500).status == Refund.Status.PROCESSING


def test_refund_refuses_to_run_inside_an_atomic_block(membership, sandbox):
    with pytest.raises(InsideAtomicBlock), transaction.atomic():
        refund(membership, 100)
    assert not Refund.objects.exists() and not applies(sandbox)


def test_a_sub_order_with_refunds_cannot_be_deleted(membership, sandbox):
    from django.db.models import ProtectedError

    refund(membership, 100)
    with pytest.raises(ProtectedError):
        membership.delete()

"""Reconciling a day against the sandbox's trade bill, over real HTTP: balanced, each discrepancy kind with its
numbers and amounts, what a query settles reported fixed, a refused or malformed bill, "not ready", the day cut."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from django_papay import wechatpay
from django_papay.models import Deduction, Discrepancy, Reconciliation, SubOrder
from django_papay.services import deduct, reconcile
from django_papay.signals import reconciliation_discrepancy

from .helpers import MCHID, MEMBERSHIP, SignalRecorder

pytestmark = pytest.mark.django_db

OTHER_SHOP = {"sub_mchid": "1900000202", "description": "配送费", "amount": 300}


def today():
    return timezone.now().astimezone(wechatpay.BEIJING).date()


def kinds(report):
    return sorted(report.discrepancies.values_list("kind", flat=True))


@pytest.fixture
def charged(signed_contract, sandbox, papay):
    """Two charges of today, succeeded here and at WeChat Pay: 1500 + 300 and 1500 fen."""
    return [deduct(signed_contract, [MEMBERSHIP, OTHER_SHOP]), deduct(signed_contract, [MEMBERSHIP])]


def test_a_day_whose_bill_agrees_is_balanced(charged):
    report = reconcile(today())
    assert report.status == Reconciliation.Status.BALANCED, report.error
    assert (report.payments_theirs, report.payments_amount_theirs) == (3, 3300)
    assert (report.payments_ours, report.payments_amount_ours) == (3, 3300)
    assert report.bill_rows == 3 and report.discrepancy_count == 0
    assert report.fees_theirs == 9 + 2 + 9  # the sandbox's 0.6 %, per sub-order
    # tradebill-<day>-all.csv.gz, or with the storage's suffix when an earlier test kept that day's file (Django 4.2
    # puts it before ".gz").
    assert report.bill_file.name.endswith(".gz") and "tradebill-" in report.bill_file.name and report.hash_value


def test_the_download_is_signed_and_its_unsigned_answer_taken_by_its_sha1(charged, sandbox):
    reconcile(today())
    download = [r for r in sandbox.requests if r.path.startswith(wechatpay.BILL_DOWNLOAD_PATH)]
    assert len(download) == 1 and download[0].headers["Authorization"].startswith(wechatpay.SIGNATURE_TYPE)


def test_a_charge_only_wechat_pay_has_is_missing_here(charged, sandbox):
    row = sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid="1900000201", amount=777)
    report = reconcile(today())
    assert report.status == Reconciliation.Status.DISCREPANCIES
    (found,) = report.discrepancies.all()
    assert found.kind == Discrepancy.Kind.MISSING_HERE
    assert (found.out_trade_no, found.transaction_id) == (row["商户订单号"], row["微信订单号"])
    assert (found.amount_ours, found.amount_theirs, found.fixed) == (None, 777, False)
    assert report.payments_amount_theirs == 3300 + 777


def test_a_success_here_the_bill_lacks_is_missing_there(charged):
    ghost = Deduction.objects.create(
        contract=charged[0].contract, combine_appid="wxd678efh567hg6787", status=Deduction.Status.SUCCEEDED
    )
    sub_order = SubOrder.objects.create(
        deduction=ghost, mchid=MCHID, sub_mchid="1900000201", description="x", amount=999, success_time=timezone.now()
    )
    report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert found.kind == Discrepancy.Kind.MISSING_THERE
    assert (found.out_trade_no, found.amount_ours, found.amount_theirs) == (sub_order.out_trade_no, 999, None)
    assert (report.payments_ours, report.payments_amount_ours) == (4, 3300 + 999)


def test_an_amount_that_differs_is_reported_with_both_amounts(charged):
    sub_order = charged[1].sub_orders.get()
    SubOrder.objects.filter(pk=sub_order.pk).update(amount=1501)
    report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.out_trade_no) == (Discrepancy.Kind.AMOUNT, sub_order.out_trade_no)
    assert (found.amount_ours, found.amount_theirs) == (1501, 1500)


def test_a_processing_charge_the_bill_shows_paid_is_settled_and_reported_fixed(signed_contract, sandbox, papay):
    sandbox.fail_next("system_error_after")  # WeChat Pay took it, the answer was a 500
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    with SignalRecorder(discrepancy=reconciliation_discrepancy) as fired:
        report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.state_ours, found.state_theirs) == (Discrepancy.Kind.STATE, "processing", "SUCCESS")
    assert found.fixed and "Settled" in found.note
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert report.status == Reconciliation.Status.DISCREPANCIES and report.fixed_count == 1
    assert (report.payments_ours, report.payments_amount_ours) == (1, 1500)  # counted once settled
    assert len(fired) == 1


def test_a_failed_charge_the_bill_shows_paid_is_corrected_and_reported_fixed(charged):
    Deduction.objects.filter(pk=charged[1].pk).update(status=Deduction.Status.FAILED)
    report = reconcile(today())
    (found,) = report.discrepancies.all()
    assert (found.kind, found.state_ours, found.fixed) == (Discrepancy.Kind.MISSING_HERE, "failed", True)
    charged[1].refresh_from_db()
    assert (charged[1].status, charged[1].corrected_from) == (Deduction.Status.SUCCEEDED, Deduction.Status.FAILED)


def test_a_damaged_hash_refuses_the_bill(charged, sandbox):
    sandbox.bills.damaged_hash = True
    report = reconcile(today())
    assert report.status == Reconciliation.Status.FAILED
    assert "SHA1" in report.error and report.discrepancy_count == 0 and not report.bill_file


@pytest.mark.parametrize("code", [wechatpay.NO_STATEMENT_EXIST, wechatpay.STATEMENT_CREATING])
def test_a_bill_not_ready_is_not_ready_then_retried(charged, sandbox, code):
    sandbox.bills.not_ready = code
    assert reconcile(today()).status == Reconciliation.Status.NOT_READY
    report = reconcile(today())
    assert report.status == Reconciliation.Status.BALANCED
    assert Reconciliation.objects.count() == 1


def test_a_day_without_trades_has_no_bill_yet(sandbox, papay):
    assert reconcile(today()).status == Reconciliation.Status.NOT_READY


def test_a_missing_column_is_an_error_naming_the_header_row(charged, sandbox):
    sandbox.bills.missing_column = "订单金额"
    report = reconcile(today())
    assert report.status == Reconciliation.Status.FAILED
    assert report.error == "bill row 1: the header has no column 订单金额"


def test_a_bad_amount_is_an_error_naming_its_row(charged, sandbox):
    sandbox.bills.bad_amount = True
    report = reconcile(today())
    assert (report.status, report.error) == (
        Reconciliation.Status.FAILED,
        "bill row 2: 应结订单金额 '12.3x' is not an amount in yuan",
    )
    assert report.discrepancy_count == 0


def test_an_expired_download_url_fails_the_run(charged, sandbox):
    sandbox.bills.download_lifetime = 0
    report = reconcile(today())
    assert report.status == Reconciliation.Status.FAILED and "expired" in report.error


def test_a_charge_at_235959_and_one_at_000001_land_in_two_days(signed_contract, sandbox, papay):
    day = today() - timedelta(days=2)
    midnight = datetime(day.year, day.month, day.day, tzinfo=wechatpay.BEIJING) + timedelta(days=1)
    sandbox.deductions.paid_at = midnight - timedelta(seconds=1)
    late = deduct(signed_contract, [MEMBERSHIP])
    sandbox.deductions.paid_at = midnight + timedelta(seconds=1)
    early = deduct(signed_contract, [OTHER_SHOP])
    first, second = reconcile(day), reconcile(day + timedelta(days=1))
    assert (first.status, second.status) == (Reconciliation.Status.BALANCED, Reconciliation.Status.BALANCED)
    assert (first.payments_theirs, first.payments_amount_theirs, first.payments_ours) == (1, 1500, 1)
    assert (second.payments_theirs, second.payments_amount_theirs, second.payments_ours) == (1, 300, 1)
    assert late.sub_orders.get().success_time < early.sub_orders.get().success_time


def test_one_sub_merchant_is_reconciled_alone(charged, sandbox):
    report = reconcile(today(), sub_mchid="1900000202")
    assert report.status == Reconciliation.Status.BALANCED
    assert (report.payments_theirs, report.payments_amount_theirs, report.payments_ours) == (1, 300, 1)
    bill_request = next(r for r in sandbox.requests if r.path.startswith(wechatpay.TRADE_BILL_PATH))
    assert "sub_mchid=1900000202" in bill_request.path and "bill_type=ALL" in bill_request.path


def test_a_rerun_replaces_the_days_report(charged, sandbox):
    sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid="1900000201", amount=5)
    first = reconcile(today())
    second = reconcile(today())
    assert first.pk == second.pk and Reconciliation.objects.count() == 1
    assert Discrepancy.objects.count() == 1 == second.discrepancy_count


def test_a_finished_report_is_kept_when_the_bill_cannot_be_fetched_again(charged, sandbox):
    first = reconcile(today())
    sandbox.bills.not_ready = wechatpay.NO_STATEMENT_EXIST  # past WeChat Pay's three months, say
    again = reconcile(today())
    assert again.status == Reconciliation.Status.NOT_READY and "is kept" in again.error and again.pk is None
    first.refresh_from_db()
    assert first.status == Reconciliation.Status.BALANCED and first.bill_file


def test_a_bill_paying_another_sub_merchant_is_reported(charged):
    sub_order = charged[1].sub_orders.get()
    SubOrder.objects.filter(pk=sub_order.pk).update(sub_mchid="1900000299")
    (found,) = reconcile(today()).discrepancies.all()
    assert (found.kind, found.out_trade_no, found.sub_mchid) == (
        Discrepancy.Kind.SUB_MERCHANT,
        sub_order.out_trade_no,
        "1900000201",
    )
    assert found.note == "Ours is for sub-merchant 1900000299."

"""Reconcile one Beijing day against WeChat Pay's trade bill: fetch, read, match, settle what a query can, report.

``reconcile(day, sub_mchid=None)`` makes (or replaces) the day's ``Reconciliation``:

1. the bill is fetched and proven (``bills``): none yet → NOT_READY (ask again later, not an error); refused
   (a SHA1 that differs) or unreachable → FAILED, with the error. A report an earlier run finished is kept
   then, not replaced;
2. the file is kept as it came (gzip, in the site's storage), then read as a stream (``bill_parse``) and matched
   in batches (``bill_match``); a malformed file → FAILED, naming the row;
3. what a query can settle is settled: a processing charge the bill shows paid (``settle_many``), a failed or
   reversed one (``requery_many``, which corrects it to succeeded), a processing refund the bill shows
   refunded (``settle_refunds``). Its discrepancy stays in the report, marked fixed — never hidden;
4. the totals, ours and theirs; BALANCED when nothing differs, else DISCREPANCIES and the
   ``reconciliation_discrepancy`` signal, after the report is committed.

Idempotent per day and sub-merchant: a re-run replaces the report and its discrepancies. Settling calls
WeChat Pay and stores as it goes, so this refuses to run inside ``transaction.atomic()``.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import wechatpay
from ..display import local_time
from ..exceptions import BillNotReady, WeChatPayError
from ..models import Deduction, Discrepancy, Reconciliation, Refund
from ..signals import reconciliation_discrepancy
from .bill_match import Matcher
from .bill_parse import BillFormatError, BillReader
from .bills import DownloadedBill, fetch_trade_bill
from .outside_atomic import require_outside_atomic
from .refund_settlement import settle_refunds
from .settlement import requery_many, settle_many

logger = logging.getLogger("django_papay.reconciliation")


def yesterday() -> date:
    """Yesterday in Beijing time: the newest day whose bill WeChat Pay makes (ready from about 10:00)."""
    return timezone.now().astimezone(wechatpay.BEIJING).date() - timedelta(days=1)


def reconcile(day: date, *, sub_mchid: str | None = None) -> Reconciliation:
    """The day's report against WeChat Pay's bill (all sub-merchants, or one); see the module docstring."""
    require_outside_atomic("reconcile")
    try:
        bill = fetch_trade_bill(day, sub_mchid or None)
    except BillNotReady as exc:
        return _not_fetched(day, sub_mchid or "", Reconciliation.Status.NOT_READY, str(exc))
    except WeChatPayError as exc:
        logger.warning("reconciliation %s: the bill was not fetched: %s", day, exc)
        return _not_fetched(day, sub_mchid or "", Reconciliation.Status.FAILED, str(exc))
    report = start_report(day, sub_mchid or "")
    with bill.file:
        try:
            return reconcile_bill(report, bill)
        except Exception as exc:  # storage, database: the report must not stay pending
            logger.exception("reconciliation %s failed", report)
            return _end(report, Reconciliation.Status.FAILED, f"{type(exc).__name__}: {exc}")


def reconcile_bill(report: Reconciliation, bill: DownloadedBill) -> Reconciliation:
    """Keep, read and match a proven bill for a started ``report``; settle, count and finish it."""
    report.hash_value = bill.hash_value
    report.bill_file.save("tradebill.csv.gz", File(bill.file), save=False)
    report.save(update_fields=["hash_value", "bill_file"])
    matcher = Matcher(report)
    reader = BillReader(bill.lines())
    try:
        found = matcher.match(reader)
    except BillFormatError as exc:
        Discrepancy.objects.filter(reconciliation=report).delete()
        logger.warning("reconciliation %s: the bill cannot be read: %s", report, exc)
        return _end(report, Reconciliation.Status.FAILED, str(exc))
    fixed = _settle(report, found.to_settle) + _settle_refunds(report, found.refunds_to_settle)
    totals = reader.totals
    report.bill_rows = totals.rows
    report.payments_theirs, report.refunds_theirs = totals.payments, totals.refunds
    report.refunds_amount_theirs, report.fees_theirs = totals.refunded, totals.fees
    report.payments_ours, report.payments_amount_ours = matcher.missing_there(report.bill_date, report.sub_mchid)
    report.payments_amount_theirs = found.paid_theirs
    report.refunds_ours, report.refunds_amount_ours = matcher.refunds_missing_there(report.bill_date, report.sub_mchid)
    report.discrepancy_count = matcher.found.discrepancies
    report.fixed_count = fixed
    status = Reconciliation.Status.DISCREPANCIES if report.discrepancy_count else Reconciliation.Status.BALANCED
    _end(report, status, "")
    if status == Reconciliation.Status.DISCREPANCIES:
        _announce(report)
    return report


def _not_fetched(day: date, sub_mchid: str, status: str, error: str) -> Reconciliation:
    """No bill this time: the day's report says so — unless an earlier run finished it, which stays as it was (a
    bill past WeChat Pay's three months, or WeChat Pay unreachable, replaces nothing); then an unsaved report
    with this run's status is returned."""
    report, _created = Reconciliation.objects.get_or_create(bill_date=day, sub_mchid=sub_mchid)
    if report.status in (Reconciliation.Status.BALANCED, Reconciliation.Status.DISCREPANCIES):
        kept = _("the report of %(time)s is kept") % {"time": local_time(report.finished_at)}
        return Reconciliation(bill_date=day, sub_mchid=sub_mchid, status=status, error=f"{error} ({kept})")
    report.started_at = report.started_at or timezone.now()
    return _end(report, status, error)


def start_report(day: date, sub_mchid: str) -> Reconciliation:
    """The day's report, emptied and PENDING: a re-run replaces what an earlier run found."""
    with transaction.atomic():
        report, _created = Reconciliation.objects.select_for_update().get_or_create(bill_date=day, sub_mchid=sub_mchid)
        report.discrepancies.all().delete()
        old_file = report.bill_file.name
        for name in (
            "bill_rows",
            "payments_ours",
            "payments_theirs",
            "payments_amount_ours",
            "payments_amount_theirs",
            "refunds_ours",
            "refunds_theirs",
            "refunds_amount_ours",
            "refunds_amount_theirs",
            "fees_theirs",
            "discrepancy_count",
            "fixed_count",
        ):
            setattr(report, name, 0)
        report.status, report.error, report.hash_value, report.bill_file = Reconciliation.Status.PENDING, "", "", ""
        report.started_at, report.finished_at = timezone.now(), None
        report.save()
    if old_file:
        report.bill_file.storage.delete(old_file)
    return report


def _end(report: Reconciliation, status: str, error: str) -> Reconciliation:
    report.status, report.error, report.finished_at = status, error, timezone.now()
    report.save()
    logger.info("reconciliation %s: %s %s", report, status, error)
    return report


def _settle(report: Reconciliation, to_settle: dict[int, list[str]]) -> int:
    """Settle (or ask again about) each deduction the bill shows paid; mark what became succeeded fixed."""
    if not to_settle:
        return 0
    deductions = list(Deduction.objects.filter(pk__in=to_settle))
    open_ = [d for d in deductions if d.status == Deduction.Status.PROCESSING]
    final = [d for d in deductions if d.status != Deduction.Status.PROCESSING]
    results = [*settle_many(open_), *requery_many(final)]
    fixed = 0
    for settled in results:
        deduction = settled.deduction
        numbers = to_settle[deduction.pk]
        mine = Discrepancy.objects.filter(reconciliation=report, row=Discrepancy.Row.PAYMENT, out_trade_no__in=numbers)
        if settled.error is None and deduction.status == Deduction.Status.SUCCEEDED:
            note = _("Settled by a query to WeChat Pay: the deduction is succeeded now.")
            fixed += mine.update(fixed=True, note=note)
        else:
            note = _("A query did not settle it: %(result)s") % {
                "result": settled.error or deduction.get_status_display()
            }
            mine.update(note=note)
    return fixed


def _settle_refunds(report: Reconciliation, to_settle: dict[int, str]) -> int:
    """Settle each processing refund the bill shows refunded; mark what became succeeded fixed."""
    if not to_settle:
        return 0
    fixed = 0
    for settled in settle_refunds(list(Refund.objects.filter(pk__in=to_settle))):
        refund = settled.refund
        mine = Discrepancy.objects.filter(
            reconciliation=report, row=Discrepancy.Row.REFUND, out_refund_no=to_settle[refund.pk]
        )
        if settled.error is None and refund.status == Refund.Status.SUCCEEDED:
            fixed += mine.update(fixed=True, note=_("Settled by a query to WeChat Pay: the refund is succeeded now."))
        else:
            result = settled.error or refund.get_status_display()
            mine.update(note=_("A query did not settle it: %(result)s") % {"result": result})
    return fixed


def _announce(report: Reconciliation) -> None:
    """The report is committed (``reconcile`` runs outside any transaction): a receiver that raises is logged."""
    for receiver, result in reconciliation_discrepancy.send_robust(sender=Reconciliation, reconciliation=report):
        if isinstance(result, Exception):
            logger.error(
                "reconciliation %s: a receiver of reconciliation_discrepancy (%s) raised: %r",
                report,
                getattr(receiver, "__qualname__", receiver),
                result,
                exc_info=(type(result), result, result.__traceback__),
            )

"""Reconcile a Beijing day against WeChat Pay's trade bill; exit 1 on discrepancies, so cron mails them.

Run it daily after 10:00 Beijing time (WeChat Pay makes the bill from about 09:00): ``papay_reconcile`` takes
yesterday. Exit codes: 0 balanced; 1 discrepancies (each one printed, fixed ones marked); 2 the run failed (the
bill refused or unreadable, WeChat Pay unreachable); 75 the bill is not ready yet (EX_TEMPFAIL: run it again
later).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from ...models import Reconciliation
from ...services.reconciliation import reconcile, yesterday

EXIT_DISCREPANCIES = 1
EXIT_FAILED = 2
EXIT_NOT_READY = 75  # sysexits' EX_TEMPFAIL
SHOWN = 100  # discrepancies printed; the admin and its CSV export have them all


def bill_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, not {value!r}") from None


def yuan(fen: int | None) -> str:
    return "-" if fen is None else f"{Decimal(fen) / 100:,.2f}"


class Command(BaseCommand):
    help = (
        "Reconcile a day (default: yesterday, Beijing time) against WeChat Pay's trade bill. Exits 1 on "
        "discrepancies, 2 when the run failed, 75 when the bill is not ready yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", type=bill_date, help="the Beijing day, YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--sub-mchid", default="", help="one sub-merchant's bill (default: all of them)")

    def handle(self, *args, date: date | None, sub_mchid: str, **options):
        report = reconcile(date or yesterday(), sub_mchid=sub_mchid or None)
        who = f"sub-merchant {report.sub_mchid}" if report.sub_mchid else "all sub-merchants"
        self.stdout.write(f"{report.bill_date} ({who}): {report.get_status_display()}")
        if report.status == Reconciliation.Status.NOT_READY:
            raise CommandError(f"WeChat Pay's bill is not ready: {report.error}", returncode=EXIT_NOT_READY)
        if report.status == Reconciliation.Status.FAILED:
            raise CommandError(report.error, returncode=EXIT_FAILED)
        self.stdout.write(
            f"payments: {report.payments_theirs} in the bill ¥{yuan(report.payments_amount_theirs)}, "
            f"{report.payments_ours} here ¥{yuan(report.payments_amount_ours)}; "
            f"refunds: {report.refunds_theirs} in the bill ¥{yuan(report.refunds_amount_theirs)}, "
            f"{report.refunds_ours} here ¥{yuan(report.refunds_amount_ours)}; fees ¥{yuan(report.fees_theirs)}"
        )
        if report.status == Reconciliation.Status.BALANCED:
            return
        for found in report.discrepancies.all()[:SHOWN]:
            number = found.out_refund_no or found.out_trade_no or found.transaction_id
            fixed = " — fixed: " + found.note if found.fixed else (f" — {found.note}" if found.note else "")
            self.stdout.write(
                f"{found.get_kind_display()}: {found.get_row_display()} {number} ours ¥{yuan(found.amount_ours)} "
                f"{found.state_ours or '-'}, WeChat Pay ¥{yuan(found.amount_theirs)} {found.state_theirs or '-'}{fixed}"
            )
        if report.discrepancy_count > SHOWN:
            self.stdout.write(f"… and {report.discrepancy_count - SHOWN} more (see the admin)")
        raise CommandError(
            f"{report.discrepancy_count} discrepancies ({report.fixed_count} fixed by a query)",
            returncode=EXIT_DISCREPANCIES,
        )

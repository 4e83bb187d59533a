"""Settle deductions and refunds whose outcome is not known or not final: ask WeChat Pay, and act on it.

A deduct call that timed out, was cut, or got a 5xx may still have charged the user: django-papay then leaves
the deduction PROCESSING and never sends it again; this queries it and reverses what never finished. A refund
is PROCESSING until WeChat Pay reports its result: this queries it, and sends one WeChat Pay has no record of
again with the same number. Run this from cron, every minute or so (on as many hosts as you like: a query
moves nothing by itself, each move takes the row lock and happens once, a reverse is claimed, and a refund's
number refunds once).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ... import dispatch
from ...models import Deduction, Refund
from ...services.due import deductions_to_settle, deductions_too_recent, refunds_to_settle


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one}" if count == 1 else f"{count} {many}"


class Command(BaseCommand):
    help = (
        "Ask WeChat Pay about processing deductions and refunds sent at least --older-than seconds ago (or the "
        "given combine_out_trade_nos and out_refund_nos) and settle them; exits non-zero when WeChat Pay could "
        "not be asked about one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "numbers", nargs="*", metavar="number", help="settle exactly these (combine_out_trade_no or out_refund_no)"
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="SECONDS",
            help="only deductions sent at least this long ago (default 60: WeChat Pay's window)",
        )
        parser.add_argument("--limit", type=int, default=500, help="at most this many deductions (and refunds) per run")

    def handle(self, *args, numbers: list[str], older_than: int, limit: int, **options):
        if numbers:
            deductions, refunds = self._named(numbers)
        else:
            deductions = list(deductions_to_settle(older_than)[:limit])
            refunds = list(refunds_to_settle(older_than)[:limit])
        # Left for the next run: WeChat Pay may not have finished them (its minute). Said, so "0" is not a mystery.
        recent = 0 if numbers else deductions_too_recent(older_than)
        skipped = f"; {recent} skipped, sent < {older_than} s ago (settled by a later run)" if recent else ""
        summaries = [
            self._deductions(deductions, skipped) if deductions or not numbers else "",
            self._refunds(refunds),
        ]
        unreachable = [summary for summary in summaries if summary]
        if unreachable:
            raise CommandError("; ".join(unreachable))

    def _deductions(self, deductions: list[Deduction], skipped: str = "") -> str:
        """Settle the deductions, one line each and a summary; the summary when one was unreachable, else ""."""
        before = {d.pk: d.get_status_display() for d in deductions}
        settled_each = dispatch.settle_each(deductions)
        if isinstance(settled_each, dispatch.Queued):  # PAPAY["TASKS"]: the workers settle them
            queued = _counted(settled_each.count, "deduction", "deductions")
            self.stdout.write(f"{queued} queued to be settled (PAPAY['TASKS']){skipped}")
            return ""
        counts = {"settled": 0, "open": 0, "unreachable": 0}
        for settled in settled_each:
            deduction, now = settled.deduction, settled.deduction.get_status_display()
            if settled.error is not None:
                counts["unreachable"] += 1
                self.stderr.write(f"{deduction}: still {now} — WeChat Pay could not tell: {settled.error}")
                continue
            is_open = deduction.status in (Deduction.Status.CREATED, Deduction.Status.PROCESSING)
            counts["open" if is_open else "settled"] += 1
            change = f"{before[deduction.pk]} → {now}" if before[deduction.pk] != now else f"{now} (unchanged)"
            note = f" — {deduction.error_display()}" if is_open and deduction.last_error else ""
            self.stdout.write(f"{deduction}: {change}{note}")
        return self._summary(_counted(len(deductions), "deduction", "deductions"), counts, skipped)

    def _refunds(self, refunds: list[Refund]) -> str:
        """Settle the refunds as ``_deductions`` does (nothing said when there are none)."""
        if not refunds:
            return ""
        before = {r.pk: r.get_status_display() for r in refunds}
        settled_each = dispatch.settle_refunds_each(refunds)
        if isinstance(settled_each, dispatch.Queued):
            self.stdout.write(
                f"{_counted(settled_each.count, 'refund', 'refunds')} queued to be settled (PAPAY['TASKS'])"
            )
            return ""
        counts = {"settled": 0, "open": 0, "unreachable": 0}
        for settled in settled_each:
            refund, now = settled.refund, settled.refund.get_status_display()
            if settled.error is not None:
                counts["unreachable"] += 1
                self.stderr.write(f"refund {refund}: still {now} — WeChat Pay could not tell: {settled.error}")
                continue
            is_open = refund.status in (Refund.Status.CREATED, Refund.Status.PROCESSING, Refund.Status.ABNORMAL)
            counts["open" if is_open else "settled"] += 1
            change = f"{before[refund.pk]} → {now}" if before[refund.pk] != now else f"{now} (unchanged)"
            note = f" — {refund.error_display()}" if is_open and refund.last_error else ""
            self.stdout.write(f"refund {refund}: {change}{note}")
        return self._summary(_counted(len(refunds), "refund", "refunds"), counts)

    def _summary(self, counted: str, counts: dict[str, int], skipped: str = "") -> str:
        summary = (
            f"{counted}: {counts['settled']} settled, {counts['open']} still open, "
            f"{counts['unreachable']} unreachable{skipped}"
        )
        if counts["unreachable"]:
            return summary
        self.stdout.write(summary)
        return ""

    def _named(self, numbers: list[str]) -> tuple[list[Deduction], list[Refund]]:
        unique = list(dict.fromkeys(numbers))
        deductions = {d.combine_out_trade_no: d for d in Deduction.objects.filter(combine_out_trade_no__in=unique)}
        refunds = {r.out_refund_no: r for r in Refund.objects.filter(out_refund_no__in=unique)}
        missing = [number for number in unique if number not in deductions and number not in refunds]
        if missing:
            raise CommandError(
                f"no deduction with combine_out_trade_no {', '.join(missing)} (nor refund with that out_refund_no)"
            )
        return [deductions[n] for n in unique if n in deductions], [refunds[n] for n in unique if n in refunds]

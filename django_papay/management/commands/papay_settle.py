"""Settle deductions whose outcome is not known or not final: ask WeChat Pay, reverse what never finished.

A deduct call that timed out, was cut, or got a 5xx may still have charged the user: django-papay then leaves
the deduction PROCESSING and never sends it again. Run this from cron, every minute or so (on as many hosts as
you like: a query moves nothing by itself, each move takes the row lock and happens once, a reverse is claimed).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ... import dispatch
from ...models import Deduction
from ...services.due import deductions_to_settle, deductions_too_recent


def _deductions(count: int) -> str:
    return f"{count} deduction" if count == 1 else f"{count} deductions"


class Command(BaseCommand):
    help = (
        "Ask WeChat Pay about processing deductions sent at least --older-than seconds ago (or the given "
        "combine_out_trade_nos) and settle them; exits non-zero when WeChat Pay could not be asked about one."
    )

    def add_arguments(self, parser):
        parser.add_argument("numbers", nargs="*", metavar="combine_out_trade_no", help="settle exactly these")
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="SECONDS",
            help="only deductions sent at least this long ago (default 60: WeChat Pay's window)",
        )
        parser.add_argument("--limit", type=int, default=500, help="at most this many deductions per run")

    def handle(self, *args, numbers: list[str], older_than: int, limit: int, **options):
        deductions = self._named(numbers) if numbers else list(deductions_to_settle(older_than)[:limit])
        # Left for the next run: WeChat Pay may not have finished them (its minute). Said, so "0" is not a mystery.
        recent = 0 if numbers else deductions_too_recent(older_than)
        skipped = f"; {recent} skipped, sent < {older_than} s ago (settled by a later run)" if recent else ""
        before = {d.pk: d.get_status_display() for d in deductions}
        settled_each = dispatch.settle_each(deductions)
        if isinstance(settled_each, dispatch.Queued):  # PAPAY["TASKS"]: the workers settle them
            self.stdout.write(f"{_deductions(settled_each.count)} queued to be settled (PAPAY['TASKS']){skipped}")
            return
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
            note = f" — {deduction.last_error}" if is_open and deduction.last_error else ""
            self.stdout.write(f"{deduction}: {change}{note}")
        summary = (
            f"{_deductions(len(deductions))}: {counts['settled']} settled, {counts['open']} still open, "
            f"{counts['unreachable']} unreachable{skipped}"
        )
        if counts["unreachable"]:
            raise CommandError(summary)
        self.stdout.write(summary)

    def _named(self, numbers: list[str]) -> list[Deduction]:
        found = {d.combine_out_trade_no: d for d in Deduction.objects.filter(combine_out_trade_no__in=numbers)}
        missing = [number for number in numbers if number not in found]
        if missing:
            raise CommandError(f"no deduction with combine_out_trade_no {', '.join(missing)}")
        return [found[number] for number in dict.fromkeys(numbers)]

"""Share frozen sub-orders and finish them: the platform's commission, then the rest unfrozen.

Sub-orders charged with ``profit_sharing`` stay frozen until shared and finished (or 180 days pass and the
commission is lost). Run this from cron, hourly or daily: it shares those charged at least
``PAPAY["SHARE_AFTER"]`` seconds ago (``--all``: every frozen one) with ``PAPAY["COMMISSION"]``'s receivers,
finishes them, and warns of any frozen within 10 days of the limit. An open share is sent again with its own
number (idempotent at WeChat Pay), never made anew, so running it twice, or on two hosts, shares once.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ... import conf, dispatch, wechatpay
from ...exceptions import SharingStateError, describe_error
from ...models import ProfitShare
from ...services.sharing_due import WARN_BEFORE, near_the_limit, sub_orders_to_share


class Command(BaseCommand):
    help = (
        "Share and finish sub-orders charged with profit_sharing at least PAPAY['SHARE_AFTER'] seconds ago "
        "(--all: every frozen one); warns of sub-orders near the 180-day limit; non-zero exit when one failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every frozen sub-order, whatever SHARE_AFTER says")
        parser.add_argument("--limit", type=int, default=500, help="at most this many sub-orders per run")

    def handle(self, *args, all: bool, limit: int, **options):
        self._warn_near_limit()
        if not all and conf.share_after() is None:
            self.stdout.write("PAPAY['SHARE_AFTER'] is not set: nothing is due by itself (--all shares every one)")
            return
        sub_orders = list(sub_orders_to_share(0.0 if all else None)[:limit])
        results = dispatch.share_each(sub_orders)
        if isinstance(results, dispatch.Queued):
            self.stdout.write(f"{results.count} sub-orders queued to be shared (PAPAY['TASKS'])")
            return
        counts = {"shared": 0, "skipped": 0, "failed": 0}
        for result in results:
            number = result.sub_order.out_trade_no
            if result.share is not None:
                # A share WeChat Pay refused (a signed 4xx) is FAILED: the run exits non-zero, so cron mails it;
                # an unknown outcome stays open (processing), to be sent again with its number.
                refused = result.share.status == ProfitShare.Status.FAILED
                counts["failed" if refused else "shared"] += 1
                note = f" — {result.share.error_display()}" if result.share.last_error else ""
                (self.stderr if refused else self.stdout).write(
                    f"{number}: {result.share.get_kind_display()} {result.share.get_status_display()}{note}"
                )
            elif isinstance(result.error, SharingStateError):
                counts["skipped"] += 1
                self.stdout.write(f"{number}: skipped — {describe_error(result.error)}")
            else:
                counts["failed"] += 1
                self.stderr.write(f"{number}: FAILED — {describe_error(result.error or Exception())}")
        summary = (
            f"{len(results)} sub-orders: {counts['shared']} shared, {counts['skipped']} skipped, "
            f"{counts['failed']} failed"
        )
        if counts["failed"]:
            raise CommandError(summary)
        self.stdout.write(summary)

    def _warn_near_limit(self) -> None:
        for sub_order in near_the_limit()[:100]:
            charged = sub_order.success_time or sub_order.deduction.settled_at
            self.stderr.write(
                f"WARNING {sub_order.out_trade_no}: frozen since {charged:%Y-%m-%d}, within {WARN_BEFORE.days} days of "
                f"WeChat Pay's {wechatpay.SHARING_LIMIT.days}-day limit — share it now or the commission is lost"
            )

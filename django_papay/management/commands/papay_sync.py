"""Reconcile with WeChat Pay: query contracts whose notification may never have come.

WeChat Pay retries a notification 15 times over 24 hours and then gives up; its documentation asks
the merchant to query. Run this from cron (on as many hosts as you like: queries are idempotent and
every state change takes the contract's row lock and never moves backwards).
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db.models import F, Q
from django.utils import timezone

from ...models import Contract
from ...services import QUERY, run_many
from ...wechatpay import PRESIGN_SESSION
from ._report import contracts_by_code, report


class Command(BaseCommand):
    help = (
        "Query WeChat Pay for pre-signed contracts older than --older-than minutes (and expired ones not "
        "queried since expiring), or for the given out_contract_codes, and apply what it says."
    )

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", metavar="out_contract_code", help="query exactly these contracts")
        parser.add_argument(
            "--older-than",
            type=int,
            default=10,
            metavar="MINUTES",
            help="only contracts pre-signed at least this long ago (default 10)",
        )
        parser.add_argument("--limit", type=int, default=500, help="at most this many contracts per run")

    def handle(self, *args, codes: list[str], older_than: int, limit: int, **options):
        contracts = contracts_by_code(codes) if codes else self._due(older_than, limit)
        before = {c.pk: c.get_status_display() for c in contracts}

        def describe(contract: Contract) -> str:
            now = contract.get_status_display()
            return f"{before[contract.pk]} → {now}" if before[contract.pk] != now else f"{now} (unchanged)"

        report(self, run_many(QUERY, contracts), describe, verb="queried")

    def _due(self, older_than: int, limit: int) -> list[Contract]:
        cutoff = timezone.now() - timedelta(minutes=older_than)
        waiting = Q(status=Contract.Status.PRESIGNED, presigned_at__lte=cutoff)
        # The user may have signed just before the session ran out and the notification got lost.
        expired_unchecked = Q(status=Contract.Status.EXPIRED) & (
            Q(queried_at__isnull=True) | Q(queried_at__lt=F("presigned_at") + PRESIGN_SESSION)
        )
        return list(Contract.objects.filter(waiting | expired_unchecked).order_by("presigned_at")[:limit])

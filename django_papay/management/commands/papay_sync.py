"""Reconcile with WeChat Pay: query contracts whose notification may never have come.

WeChat Pay retries a notification 15 times over 24 hours and then gives up; its documentation asks
the merchant to query. Run this from cron (on as many hosts as you like: queries are idempotent and
every state change takes the contract's row lock and never moves backwards).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ... import dispatch
from ...models import Contract
from ...services.due import contracts_to_sync
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
        outcomes = dispatch.query_each(contracts)
        if isinstance(outcomes, dispatch.Queued):  # PAPAY["TASKS"]: the workers query them
            self.stdout.write(f"{outcomes.count} contracts queued for a query (PAPAY['TASKS'])")
            return

        def describe(contract: Contract) -> str:
            now = contract.get_status_display()
            return f"{before[contract.pk]} → {now}" if before[contract.pk] != now else f"{now} (unchanged)"

        report(self, outcomes, describe, verb="queried")

    def _due(self, older_than: int, limit: int) -> list[Contract]:
        return list(contracts_to_sync(older_than)[:limit])

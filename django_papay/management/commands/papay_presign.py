"""Pre-sign contracts from a script: ``papay_presign CODE…`` prints each pre_entrustweb_id."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ... import dispatch
from ...display import local_time
from ...models import Contract
from ._report import contracts_by_code, report


class Command(BaseCommand):
    help = (
        "Open WeChat Pay signing sessions for the given contracts and print their pre_entrustweb_id. "
        "A contract that is signed or already has a live session is skipped, so reruns are harmless."
    )

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="+", metavar="out_contract_code")
        parser.add_argument("--mini-program", action="store_true", help="pre-sign for a mini-program, not an App")

    def handle(self, *args, codes: list[str], mini_program: bool, **options):
        channel = Contract.Channel.MINI_PROGRAM if mini_program else Contract.Channel.APP
        outcomes = dispatch.presign_each(contracts_by_code(codes), channel)
        if isinstance(outcomes, dispatch.Queued):  # PAPAY["TASKS"]: the workers pre-sign them
            self.stdout.write(f"{outcomes.count} contracts queued for a pre-sign (PAPAY['TASKS'])")
            return

        def describe(contract: Contract) -> str:
            expires = local_time(contract.presign_expires_at)
            return f"pre_entrustweb_id {contract.pre_entrustweb_id} valid until {expires}"

        report(self, outcomes, describe, verb="pre-signed")

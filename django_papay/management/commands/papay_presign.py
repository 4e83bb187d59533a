"""Pre-sign contracts from a script: ``papay_presign CODE…`` prints each pre_entrustweb_id."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ... import conf
from ...display import local_time
from ...models import Contract
from ...services import PRESIGN, PRESIGN_MINI_PROGRAM, run_many
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
        if conf.tasks_enabled():  # the workers pre-sign them
            from ...tasks import enqueue_contracts, presign_contract

            ids = [c.pk for c in contracts_by_code(codes)]
            count = enqueue_contracts(presign_contract, ids, channel="mini_program" if mini_program else "app")
            self.stdout.write(f"{count} contracts queued for a pre-sign (PAPAY['TASKS'])")
            return
        operation = PRESIGN_MINI_PROGRAM if mini_program else PRESIGN

        def describe(contract: Contract) -> str:
            expires = local_time(contract.presign_expires_at)
            return f"pre_entrustweb_id {contract.pre_entrustweb_id} valid until {expires}"

        report(self, run_many(operation, contracts_by_code(codes)), describe, verb="pre-signed")

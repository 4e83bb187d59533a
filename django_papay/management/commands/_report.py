"""What papay_sync and papay_presign print: one line per contract, a summary, a non-zero exit on failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.core.management.base import BaseCommand, CommandError

from ...exceptions import ContractStateError, describe_error
from ...models import Contract
from ...services import Outcome


def report(
    command: BaseCommand, outcomes: Sequence[Outcome], describe: Callable[[Contract], str], *, verb: str
) -> None:
    """Print each outcome; a contract skipped for its state is not a failure (cron may race itself)."""
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for outcome in outcomes:
        code, error = outcome.contract.out_contract_code, outcome.error
        if error is None:
            counts["ok"] += 1
            command.stdout.write(f"{code}: {describe(outcome.contract)}")
        elif isinstance(error, ContractStateError):
            counts["skipped"] += 1
            command.stdout.write(f"{code}: skipped — {error}")
        else:
            counts["failed"] += 1
            text = describe_error(error)
            command.stderr.write(f"{code}: FAILED — {text}")
    summary = f"{len(outcomes)} {verb}: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed"
    if counts["failed"]:
        raise CommandError(summary)
    command.stdout.write(summary)


def contracts_by_code(codes: Sequence[str]) -> list[Contract]:
    """The contracts named, in the order named; CommandError naming any that do not exist."""
    found = {c.out_contract_code: c for c in Contract.objects.filter(out_contract_code__in=codes)}
    missing = [code for code in codes if code not in found]
    if missing:
        raise CommandError(f"no contract with out_contract_code {', '.join(missing)}")
    return [found[code] for code in dict.fromkeys(codes)]

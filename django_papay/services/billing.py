"""Deductions in bulk (a billing run): store every charge first, then send each once.

``store_run`` validates and commits every charge as a CREATED deduction of one ``BillingRun`` before any is
sent; ``send_created`` sends a run's CREATED rows one after another in this process. Whether a run is sent here
or by the workers (``PAPAY["TASKS"]``: a ``send_deductions`` task per ten rows) is decided above the services, by
``dispatch.deduct_many`` / ``dispatch.send_run``.

Exactly once holds whatever happens to the workers: a deduction is sent only by whoever wins its claim
(CREATED → PROCESSING, one conditional UPDATE, ``deductions.send``), so a send task run twice, a run enqueued
twice, or a resumed run after a crash sends each number at most once. A deduction whose outcome is unknown
stays PROCESSING and is settled (queried), never sent again; a charge that WeChat Pay never received ends
FAILED, and charging that user again is a new deduction with a new number, which only the caller decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_noop

from ..models import BillingRun, Contract, Deduction
from ..stored_messages import Message
from . import state
from .deduction_input import why_not_chargeable
from .deduction_records import announce
from .deductions import send
from .outside_atomic import require_outside_atomic
from .run_store import store_in_batches
from .turns import in_turn

logger = logging.getLogger("django_papay.deductions")


@dataclass(frozen=True)
class Charge:
    """One charge of a billing run: as ``deduct``'s arguments."""

    contract: Contract
    sub_orders: Sequence[Mapping[str, Any]]
    combine_out_trade_no: str | None = None
    risk_info: str = ""


@dataclass
class Planned:
    """What ``deduct_many`` did: the run, the charges it refused (nothing stored or sent for them), and whether
    the run was enqueued (``queued``: the workers send it) rather than sent in this process."""

    run: BillingRun
    refused: list[tuple[Charge, Exception]] = field(default_factory=list)
    queued: bool = False


def store_run(charges: Iterable[Charge], *, label: str = "", combine_appid: str | None = None) -> Planned:
    """Store each charge as a CREATED deduction of a new billing run; nothing is sent yet (``send_created``).

    A charge that cannot be stored (bad input, a contract that is not signed) is refused and reported with its
    error in ``refused``; the others go ahead, whatever one charge raised. Stored in batches (``run_store``).
    Inside ``transaction.atomic()`` it raises InsideAtomicBlock, storing nothing: the rows must be committed
    before anything is sent.
    """
    require_outside_atomic("deduct_many")  # the public name: dispatch.deduct_many
    run = BillingRun.objects.create(label=label)
    planned = Planned(run)
    store_in_batches(charges, run, combine_appid, lambda charge, exc: planned.refused.append((charge, exc)))
    return planned


def send_created(run: BillingRun) -> None:
    """Send the run's CREATED deductions here, one after another; rows already claimed are skipped.

    Safe to call again for the same run (to resume one whose sender died before claiming a row).
    """
    require_outside_atomic("send_run")  # the public name: dispatch.send_run
    for deduction in created(run):
        if not failed_unsent(deduction):
            send(deduction)  # its call takes its place under MAX_CALLS_PER_SECOND (operations), waiting if need be


def failed_unsent(deduction: Deduction) -> bool:
    """Fail a CREATED deduction without sending it when its contract can no longer be charged; True if so.

    Called just before the claim: a run's rows are sent minutes or hours after they were stored, and the user
    may have ended the contract (or it expired) meanwhile. WeChat Pay would refuse with CONTRACT_NOT_EXIST; we
    do not ask. The row lock and the CREATED check keep a deduction someone claimed in the meantime as it is.
    """
    problem = why_not_chargeable(Contract.objects.get(pk=deduction.contract_id))  # as it is now, not as loaded
    if not problem:
        return False

    def fail() -> Signal | None:
        with transaction.atomic():
            locked = Deduction.objects.select_for_update().get(pk=deduction.pk)
            if locked.status != Deduction.Status.CREATED:
                return None
            error = Message(gettext_noop("Not sent: %(problem)s"), problem=problem)
            return state.finish_deduction(locked, Deduction.Status.FAILED, at=timezone.now(), error=error)

    signal = in_turn(fail)
    in_turn(deduction.refresh_from_db)
    if signal is None:
        return False
    logger.warning("deduction %s not sent: %s", deduction, problem.english())
    announce(signal, deduction)  # after the commit, as every deduction signal
    return True


FETCH = 1_000  # rows read at a time from a run: a run of 100,000 is never held in memory whole


def created(run: BillingRun) -> Iterator[Deduction]:
    """The run's deductions not sent yet, in the order they were stored, read ``FETCH`` at a time (by key)."""
    rows = run.deductions.filter(status=Deduction.Status.CREATED).select_related("contract").order_by("pk")
    batch = list(rows[:FETCH])
    while batch:
        yield from batch
        batch = list(rows.filter(pk__gt=batch[-1].pk)[:FETCH]) if len(batch) == FETCH else []


def created_ids(run: BillingRun) -> Iterator[list[int]]:
    """The primary keys of the run's CREATED deductions, ``FETCH`` at a time (by key): a fan-out's batches."""
    rows = run.deductions.filter(status=Deduction.Status.CREATED).order_by("pk").values_list("pk", flat=True)
    batch = list(rows[:FETCH])
    while batch:
        yield batch
        batch = list(rows.filter(pk__gt=batch[-1])[:FETCH]) if len(batch) == FETCH else []


def progress(run: BillingRun) -> dict[str, int]:
    """How many of the run's deductions are in each status, and how many are queued (a send task enqueued)."""
    counts = run.deductions.aggregate(
        total=Count("pk"),
        queued=Count("pk", filter=Q(status=Deduction.Status.CREATED, queued_at__isnull=False)),
        **{status: Count("pk", filter=Q(status=status)) for status in Deduction.Status.values},
    )
    return counts


def mark_queued(deduction_ids: Sequence[int]) -> None:
    Deduction.objects.filter(pk__in=deduction_ids).update(queued_at=timezone.now())

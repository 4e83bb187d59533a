"""Enqueue it or run it here: decided once, for every edge, by ``PAPAY["TASKS"]``.

The admin's actions, the commands and a site's own code hand bulk work to the functions below. With TASKS on,
each row becomes one small task (``tasks.py``) and the answer is ``Queued``: how many were enqueued, the
workers call WeChat Pay. Without it the work runs in this process and the answer is what the services return
(``Outcome`` per contract, ``Settled`` per deduction, a ``Refund`` or ``RefundSettled`` per refund). The
services never enqueue anything themselves; the tasks never decide either (they run one row, or fan out to
one task per row).

``tasks.py`` is imported only with TASKS on: the Tasks framework is an optional extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from . import conf
from .models import BillingRun, Contract, Deduction, Reconciliation, Refund, SubOrder
from .services import (
    PRESIGN_BY_CHANNEL,
    QUERY,
    Charge,
    Outcome,
    Planned,
    RefundSettled,
    Settled,
    refund,
    run_many,
    settle_many,
    settle_refunds,
)
from .services.billing import send_created, store_run
from .services.outside_atomic import require_outside_atomic
from .services.reconciliation import reconcile
from .services.refunds import store_refund
from .services.sharing_due import Shared, share_many


@dataclass(frozen=True)
class Queued:
    """Work handed to the workers: ``count`` rows, one task each."""

    count: int


def enqueues() -> bool:
    """True when bulk work goes to the workers (``PAPAY["TASKS"]``), False when it runs in the caller's process."""
    return conf.tasks_enabled()


def presign_each(contracts: Sequence[Contract], channel: str = Contract.Channel.APP) -> Queued | list[Outcome]:
    """Pre-sign each contract for ``channel`` (a ``Contract.Channel``): one task each, or the calls here."""
    channel = Contract.Channel(channel)
    if enqueues():
        from . import tasks

        return Queued(tasks.enqueue_contracts(tasks.presign_contract, _pks(contracts), channel=channel.value))
    return run_many(PRESIGN_BY_CHANNEL[channel], list(contracts))


def query_each(contracts: Sequence[Contract]) -> Queued | list[Outcome]:
    """Ask WeChat Pay for each contract's state and apply it: one task each, or the calls here."""
    if enqueues():
        from . import tasks

        return Queued(tasks.enqueue_contracts(tasks.query_contract, _pks(contracts)))
    return run_many(QUERY, list(contracts))


def settle_each(deductions: Sequence[Deduction]) -> Queued | list[Settled]:
    """Settle each deduction (query, reverse what never finished): one task per processing one, or here.

    Only PROCESSING deductions are enqueued (the task does nothing for the others); run here, every deduction
    given gets its ``Settled``.
    """
    if enqueues():
        from . import tasks

        ids = [d.pk for d in deductions if d.status == Deduction.Status.PROCESSING]
        return Queued(tasks.enqueue_deductions(tasks.settle_deduction, ids))
    return settle_many(list(deductions))


def deduct_many(charges: Iterable[Charge], *, label: str = "", combine_appid: str | None = None) -> Planned:
    """Store each charge as a CREATED deduction of a new billing run, then have every one sent once.

    Every charge is committed before any is sent (``services.billing.store_run``); a charge that cannot be
    stored is reported in ``refused``. Then the run is sent (``send_run``): with TASKS enqueued
    (``planned.queued``, a ``send_deductions`` task per ten rows) and this returns at once; without, sent here one
    after another. Inside ``transaction.atomic()`` it raises InsideAtomicBlock, storing nothing.
    """
    planned = store_run(charges, label=label, combine_appid=combine_appid)
    planned.queued = send_run(planned.run)
    return planned


def send_run(run: BillingRun) -> bool:
    """Send the run's CREATED deductions: enqueued as tasks (True) with ``PAPAY["TASKS"]``, else here (False).

    Safe to call again for the same run (to resume one whose worker died before claiming a row): rows
    already claimed are skipped, and a row enqueued twice is sent by whichever task claims it.
    """
    require_outside_atomic("send_run")
    if enqueues():
        from . import tasks

        tasks.send_billing_run.enqueue(run.pk)
        return True
    send_created(run)
    return False


def share_each(sub_orders: Sequence[SubOrder]) -> Queued | list[Shared]:
    """Share (and finish) each frozen sub-order: one task each, or here (``Shared`` per sub-order)."""
    if enqueues():
        from . import tasks

        for sub_order in sub_orders:
            tasks.share_sub_order.enqueue(sub_order.pk)
        return Queued(len(sub_orders))
    return share_many(list(sub_orders))


def schedule_sharing(sender: object, deduction: Deduction, **kwargs: object) -> None:
    """deduction_succeeded's receiver (connected by the AppConfig): with ``PAPAY["SHARE_AFTER"]`` and TASKS on,
    each profit_sharing sub-order gets a ``share_sub_order`` task due that long after the charge.

    A backend that cannot defer gets none: ``papay_share`` from cron shares them when due.
    """
    if not (conf.share_after.given() and enqueues()):
        return
    from . import tasks

    delay = conf.share_after() or 0.0
    for sub_order in deduction.sub_orders.filter(profit_sharing=True):
        if not tasks.later(tasks.share_sub_order, delay, sub_order.pk):
            break


def reconcile_day(day: date, sub_mchid: str | None = None) -> Queued | Reconciliation:
    """Reconcile ``day`` against WeChat Pay's bill: one task (retried while the bill is not ready), or here."""
    if enqueues():
        from . import tasks

        tasks.reconcile_day.enqueue(day.isoformat(), sub_mchid or "")
        return Queued(1)
    return reconcile(day, sub_mchid=sub_mchid)


def refund_one(
    sub_order: SubOrder, amount: int, *, reason: str = "", out_refund_no: str | None = None, advance: bool = False
) -> Refund:
    """Refund ``amount`` fen of ``sub_order``: stored (and committed) here either way, then sent by a task
    with ``PAPAY["TASKS"]`` (the refund comes back CREATED, ``queued``) or here (see ``services.refund``).

    Raises ValidationError, storing nothing, as ``services.refund`` does.
    """
    require_outside_atomic("refund_one")
    if not enqueues():
        return refund(sub_order, amount, reason=reason, out_refund_no=out_refund_no, advance=advance)
    from . import tasks

    stored = store_refund(sub_order, amount, reason=reason, out_refund_no=out_refund_no, advance=advance)
    if stored.status == Refund.Status.CREATED:
        tasks.send_refund.enqueue(stored.pk)
    return stored


def settle_refunds_each(refunds: Sequence[Refund]) -> Queued | list[RefundSettled]:
    """Settle each refund (query; not at WeChat Pay: sent again with its number): one task per open one, or here."""
    if enqueues():
        from . import tasks

        ids = [r.pk for r in refunds if r.status in (Refund.Status.CREATED, Refund.Status.PROCESSING)]
        return Queued(tasks.enqueue_refunds(tasks.settle_refund, ids))
    return settle_refunds(list(refunds))


def _pks(rows: Sequence[Contract]) -> list[int]:
    return [row.pk for row in rows]

"""django-papay's bulk work as Django Tasks: declared here once; the site's ``TASKS`` setting picks the engine.

Django ≥ 6 has the Tasks framework built in (``django.tasks``); older Django gets the same API from the
``django-tasks`` backport (``pip install "django-papay[tasks]"``). A backend hands the work to real workers:
``django_tasks_db`` (a database worker, PostgreSQL) or ``django_tasks_rq`` (RQ on Redis). django-papay ships
no queue of its own. Whether bulk work is enqueued here or run in the caller's process is ``dispatch.py``'s
decision; this module only declares the tasks and how rows are enqueued (``enqueue_contracts``,
``enqueue_deductions``, ``enqueue_sends``), below dispatch and above the services.

Each task takes primary keys, never objects, and is safe to run twice: the state rules and the deduction's
claim (CREATED → PROCESSING) make a second run a no-op. Errors are recorded on the row (``last_error``).

Retries go back through the framework, never a sleep in a worker: a task is enqueued again with
``run_after`` (on a backend that can defer; otherwise it is left to cron, ``papay_sync``/``papay_settle``).

- Calls that are safe to repeat — pre-sign (only while the contract has no live session), contract query,
  deduction query (settle) — are retried after a 429, a 5xx or no answer, with exponential backoff.
- A deduct call is **never** retried: after a 429, a 5xx or no answer the deduction stays PROCESSING (money
  may have moved) and ``settle_deduction`` runs later, which queries it and, once WeChat Pay's minute has
  passed, reverses it or marks it FAILED (never received).
- A share (分账) is retried like a query: its ``out_order_no`` is idempotent at WeChat Pay, so an open share is
  queried or sent again with the same number (``share_sub_order``), never made anew.
- A refund may and should be sent again with the **same** ``out_refund_no`` (WeChat Pay refunds a number once):
  ``send_refund`` sends a stored one, and ``settle_refund`` queries it, sends it again with that number when
  WeChat Pay has none, and comes back with backoff while it is open. No task ever makes a new number.
- ``PAPAY["MAX_CALLS_PER_SECOND"]``: every call takes one place (``services.ratelimit``). A task takes its first
  call's place itself, without waiting, before a deduction is claimed; a task that finds the second full is
  enqueued again for the next second. Its later calls (settle's reverse and the query after it) wait for theirs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils import timezone

try:  # Django ≥ 6
    from django.tasks import task
except ImportError:  # pragma: no cover - depends on the Django version
    try:
        from django_tasks import task  # type: ignore[no-redef]
    except ImportError as exc:
        raise ImproperlyConfigured(
            'django_papay.tasks needs Django 6 (django.tasks) or the backport: pip install "django-papay[tasks]"'
        ) from exc

from .exceptions import ContractStateError, SharingStateError, WeChatPayError, describe_error
from .models import BillingRun, Contract, Deduction, ProfitShare, Reconciliation, Refund, SubOrder
from .services import PRESIGN_BY_CHANNEL, QUERY, ratelimit, refund_settlement, settle
from .services.billing import created_ids, failed_unsent, mark_queued
from .services.deductions import send
from .services.due import contracts_to_sync, deductions_to_settle, refunds_to_settle
from .services.operations import Operation, run
from .services.reconciliation import reconcile, yesterday
from .services.refunds import send_refund as send_stored_refund
from .services.sharing import share
from .services.sharing_due import sub_orders_to_share
from .stored_messages import error_columns

logger = logging.getLogger("django_papay.tasks")

MAX_ATTEMPTS = 8  # retries of one call after 429/5xx/no answer, then it is left to cron
BACKOFF_BASE = 2.0  # seconds: 2, 4, 8, … (±50 %), at most BACKOFF_MAX
BACKOFF_MAX = 300.0
SETTLE_FIRST = 10.0  # seconds after an unknown deduct outcome before the first query: 10, 20, 40, 80, …
FAN_OUT_LIMIT = 100_000
# A billing run's deductions per send task: a task's own cost — the queue's poll, claim and result row, and with
# RQ's default worker a fork — is a few milliseconds, spread over ten; a run of 300 is still 30 tasks to share.
SEND_BATCH = 10
BILL_RETRY = 3600.0  # seconds before asking again for a bill not ready, or after a failed run
BILL_ATTEMPTS = 12


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt + 1``: exponential, jittered so workers do not retry in step."""
    return min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not a secret


def later(task_: Any, seconds: float, *args: Any, **kwargs: Any) -> bool:
    """Enqueue ``task_`` again in ``seconds``; False when the backend cannot defer (then cron picks it up)."""
    if not task_.get_backend().supports_defer:
        return False
    task_.using(run_after=timezone.now() + timedelta(seconds=seconds)).enqueue(*args, **kwargs)
    return True


@contextmanager
def _first_call(task_: Any, *args: Any, **kwargs: Any) -> Iterator[bool]:
    """The block's first WeChat Pay call has its place under MAX_CALLS_PER_SECOND (True), or the task comes back
    next second (False: it ends here). The place is taken here, without waiting, and that call uses it
    (``ratelimit.first_call_place``); the task's other calls take their own, waiting if need be.

    A backend that cannot defer runs tasks in the caller's own process: there, the call waits for its place.
    """
    with ratelimit.first_call_place() as wait:
        if wait:
            jitter = random.uniform(0, 0.5)  # noqa: S311 - spreads the next second's takers, not a secret
            if later(task_, wait + jitter, *args, **kwargs):
                yield False
                return
        yield True


def _finished(contract_id: int) -> None:
    Contract.objects.filter(pk=contract_id).update(queued_at=None)


# --- one row each -----------------------------------------------------------------------------


def _contract_call(task_: Any, operation: Operation, contract_id: int, attempt: int, **kwargs: Any) -> str:
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        return "gone"
    try:
        with _first_call(task_, contract_id, attempt=attempt, **kwargs) as placed:
            if not placed:
                return "rate limited: again next second"
            run(operation, contract)
    except ContractStateError as exc:  # signed, terminated, a live session: nothing to do (a rerun lands here)
        _finished(contract_id)
        return f"skipped: {exc}"
    except ValidationError as exc:
        text = describe_error(exc)
        Contract.objects.filter(pk=contract_id).update(**error_columns(exc), queued_at=None)
        return f"not sent: {text}"
    except WeChatPayError as exc:  # recorded on the contract by run()
        if exc.retryable and attempt < MAX_ATTEMPTS:
            if later(task_, backoff(attempt), contract_id, attempt=attempt + 1, **kwargs):
                return f"retry {attempt + 1}: {exc}"
        _finished(contract_id)
        return f"failed: {exc}"
    _finished(contract_id)
    return contract.status


@task
def presign_contract(contract_id: int, channel: str = Contract.Channel.APP, attempt: int = 0) -> str:
    """Pre-sign one contract (``channel``: a ``Contract.Channel`` value); skipped if it has a live session."""
    operation = PRESIGN_BY_CHANNEL[Contract.Channel(channel)]
    return _contract_call(presign_contract, operation, contract_id, attempt, channel=channel)


@task
def query_contract(contract_id: int, attempt: int = 0) -> str:
    """Ask WeChat Pay for one contract's state and apply it (never backwards)."""
    return _contract_call(query_contract, QUERY, contract_id, attempt)


@task
def send_deduction(deduction_id: int) -> str:
    """Send one CREATED deduction if this task wins its claim; a second run, or a sent one, sends nothing.

    Never retried: an unknown outcome (429, 5xx, no answer) stays PROCESSING and is settled later.
    """
    return _send_one(deduction_id, send_deduction, (deduction_id,))


@task
def send_deductions(deduction_ids: list[int]) -> str:
    """``send_deduction`` for each of a billing run's deductions in turn (``SEND_BATCH`` of them): one task's
    fixed cost — the queue's poll and claim, its result row, and RQ's fork — spread over the batch.

    Exactly once as ever: each row's claim decides who sends it. A worker that dies mid-batch leaves the rest
    CREATED (and queued); resuming the run enqueues them again. A full second sends the rest next second.
    """
    outcomes: list[str] = []
    for position, deduction_id in enumerate(deduction_ids):
        outcomes.append(_send_one(deduction_id, send_deductions, (deduction_ids[position:],)))
        if outcomes[-1] == RATE_LIMITED:
            break
    return ", ".join(outcomes)


RATE_LIMITED = "rate limited: again next second"


def _send_one(deduction_id: int, task_: Any, args: tuple) -> str:
    """Send one CREATED deduction; ``task_(*args)`` comes back next second when the second is full (before
    the claim: a claimed deduction must be sent at once)."""
    deduction = Deduction.objects.select_related("contract").filter(pk=deduction_id).first()
    if deduction is None or deduction.status != Deduction.Status.CREATED:
        return "already sent" if deduction else "gone"
    with _first_call(task_, *args) as placed:
        if not placed:
            return RATE_LIMITED
        if failed_unsent(deduction):  # its contract ended (terminated, expired) after the row was stored
            return deduction.status
        send(deduction)
    if deduction.status == Deduction.Status.PROCESSING:
        later(settle_deduction, SETTLE_FIRST, deduction_id)
    return deduction.status


@task
def settle_deduction(deduction_id: int, attempt: int = 0) -> str:
    """Query one PROCESSING deduction and act on it (``services.settle``); again later while it is open."""
    deduction = Deduction.objects.filter(pk=deduction_id).first()
    if deduction is None or deduction.status != Deduction.Status.PROCESSING:
        return deduction.status if deduction else "gone"
    try:
        with _first_call(settle_deduction, deduction_id, attempt=attempt) as placed:
            if not placed:
                return "rate limited: again next second"
            settle(deduction)  # its query uses the place taken; a reverse and the query after it wait for theirs
    except WeChatPayError as exc:  # recorded on the deduction by settle()
        if exc.retryable and attempt < MAX_ATTEMPTS:
            later(settle_deduction, backoff(attempt), deduction_id, attempt=attempt + 1)
        return f"not settled: {exc}"
    if deduction.status == Deduction.Status.PROCESSING and attempt < MAX_ATTEMPTS:
        # Not final yet, or not at WeChat Pay yet: within its minute settle waits; after it, it decides.
        later(settle_deduction, min(BACKOFF_MAX, SETTLE_FIRST * 2 ** (attempt + 1)), deduction_id, attempt=attempt + 1)
    return deduction.status


@task
def send_refund(refund_id: int) -> str:
    """Send one CREATED refund if this task wins its claim; then settle it later while it is open."""
    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None or refund.status != Refund.Status.CREATED:
        return refund.status if refund else "gone"
    with _first_call(send_refund, refund_id) as placed:
        if not placed:
            return "rate limited: again next second"
        send_stored_refund(refund)
    if refund.status == Refund.Status.PROCESSING:
        later(settle_refund, SETTLE_FIRST, refund_id)
    return refund.status


@task
def settle_refund(refund_id: int, attempt: int = 0) -> str:
    """Query one open refund and act on it (``services.settle_refund``: not at WeChat Pay, it is sent again with
    its own number); again later, with backoff, while it is open."""
    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None or refund.status not in (Refund.Status.CREATED, Refund.Status.PROCESSING):
        return refund.status if refund else "gone"
    try:
        with _first_call(settle_refund, refund_id, attempt=attempt) as placed:
            if not placed:
                return "rate limited: again next second"
            refund_settlement.settle_refund(refund)  # its query uses the place taken; a re-send waits for its own
    except WeChatPayError as exc:  # recorded on the refund by settle_refund()
        if exc.retryable and attempt < MAX_ATTEMPTS:
            later(settle_refund, backoff(attempt), refund_id, attempt=attempt + 1)
        return f"not settled: {exc}"
    if refund.status == Refund.Status.PROCESSING and attempt < MAX_ATTEMPTS:
        # Accepted, or refused for now (NOT_ENOUGH, FREQUENCY_LIMITED): WeChat Pay takes one request per order a
        # minute, so never sooner than that.
        later(
            settle_refund,
            max(60.0, min(BACKOFF_MAX, SETTLE_FIRST * 2 ** (attempt + 1))),
            refund_id,
            attempt=attempt + 1,
        )
    return refund.status


# --- fan-out: one small task per row ---------------------------------------------------------


def enqueue_contracts(task_: Any, contract_ids: Sequence[int], **kwargs: Any) -> int:
    """Enqueue ``task_`` for each contract, marking it queued; returns how many."""
    Contract.objects.filter(pk__in=contract_ids).update(queued_at=timezone.now())
    for contract_id in contract_ids:
        task_.enqueue(contract_id, **kwargs)
    return len(contract_ids)


def enqueue_deductions(task_: Any, deduction_ids: Sequence[int]) -> int:
    """Enqueue ``task_`` for each deduction; returns how many."""
    for deduction_id in deduction_ids:
        task_.enqueue(deduction_id)
    return len(deduction_ids)


def enqueue_sends(deduction_ids: Sequence[int]) -> int:
    """Mark the deductions queued and enqueue ``send_deductions`` for each ``SEND_BATCH`` of them; how many."""
    mark_queued(deduction_ids)
    for start in range(0, len(deduction_ids), SEND_BATCH):
        send_deductions.enqueue(list(deduction_ids[start : start + SEND_BATCH]))
    return len(deduction_ids)


def enqueue_refunds(task_: Any, refund_ids: Sequence[int]) -> int:
    """Enqueue ``task_`` for each refund; returns how many."""
    for refund_id in refund_ids:
        task_.enqueue(refund_id)
    return len(refund_ids)


@task
def sync_contracts(older_than_minutes: int = 10, limit: int = FAN_OUT_LIMIT) -> int:
    """``papay_sync`` as tasks: one ``query_contract`` per contract whose notification may have been lost."""
    ids = list(contracts_to_sync(older_than_minutes).values_list("pk", flat=True)[:limit])
    return enqueue_contracts(query_contract, ids)


@task
def settle_deductions(older_than_seconds: int = 60, limit: int = FAN_OUT_LIMIT) -> int:
    """``papay_settle`` as tasks: one ``settle_deduction`` per deduction sent that long ago and still open."""
    ids = list(deductions_to_settle(older_than_seconds).values_list("pk", flat=True)[:limit])
    return enqueue_deductions(settle_deduction, ids)


@task
def settle_open_refunds(older_than_seconds: int = 60, limit: int = FAN_OUT_LIMIT) -> int:
    """``papay_settle``'s refunds as tasks: one ``settle_refund`` per refund sent that long ago and still open."""
    ids = list(refunds_to_settle(older_than_seconds).values_list("pk", flat=True)[:limit])
    return enqueue_refunds(settle_refund, ids)


@task
def send_billing_run(run_id: int) -> int:
    """One ``send_deductions`` per ``SEND_BATCH`` CREATED deductions of the run; enqueue it again to resume a
    run (no double charge: each row's claim decides who sends it)."""
    run_ = BillingRun.objects.filter(pk=run_id).first()
    if run_ is None:
        return 0
    # A thousand at a time (by key), so a run of 100,000 is never read whole.
    return sum(enqueue_sends(ids) for ids in created_ids(run_))


# --- profit sharing ------------------------------------------------------------------------------


@task
def share_sub_order(sub_order_id: int, attempt: int = 0) -> str:
    """Share one frozen sub-order (the commission rule, then finish); again later while its outcome is open.

    Safe to run twice: an open share is sent again with its own number (idempotent at WeChat Pay) or queried,
    never made anew. Retried with backoff after FREQUENCY_LIMITED, a 5xx or no answer.
    """
    sub_order = SubOrder.objects.select_related("deduction").filter(pk=sub_order_id).first()
    if sub_order is None:
        return "gone"
    try:
        with _first_call(share_sub_order, sub_order_id, attempt=attempt) as placed:
            if not placed:
                return "rate limited: again next second"
            shared = share(sub_order)
    except (SharingStateError, ValidationError) as exc:
        return f"skipped: {describe_error(exc)}"
    if shared.status in (ProfitShare.Status.CREATED, ProfitShare.Status.PROCESSING) and attempt < MAX_ATTEMPTS:
        later(share_sub_order, backoff(attempt), sub_order_id, attempt=attempt + 1)
    return shared.status


@task
def share_due(limit: int = FAN_OUT_LIMIT) -> int:
    """``papay_share`` as tasks: one ``share_sub_order`` per sub-order due (``PAPAY["SHARE_AFTER"]``)."""
    ids = list(sub_orders_to_share().values_list("pk", flat=True)[:limit])
    for sub_order_id in ids:
        share_sub_order.enqueue(sub_order_id)
    return len(ids)


# --- reconciliation --------------------------------------------------------------------------


@task
def reconcile_day(bill_date: str = "", sub_mchid: str = "", attempt: int = 0) -> str:
    """Reconcile one Beijing day (default: yesterday) against WeChat Pay's bill; schedule it daily after 10:00.

    A bill not ready yet (or a run that failed: unreachable, a refused file) is asked for again in an hour, up
    to ``BILL_ATTEMPTS`` times, on a backend that can defer; otherwise cron's ``papay_reconcile`` picks it up.
    """
    day = date.fromisoformat(bill_date) if bill_date else yesterday()
    report = reconcile(day, sub_mchid=sub_mchid or None)
    retry = report.status in (Reconciliation.Status.NOT_READY, Reconciliation.Status.FAILED)
    if retry and attempt < BILL_ATTEMPTS:
        later(reconcile_day, BILL_RETRY, day.isoformat(), sub_mchid, attempt=attempt + 1)
    return report.status

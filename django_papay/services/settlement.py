"""Settle what a deduct call left open: ask WeChat Pay, and reverse (撤销) what never finished.

For each PROCESSING deduction ``settle`` queries ``GET …/transactions/{combine_out_trade_no}``:

- the sub-orders' states are stored; all paid → SUCCEEDED, all refused → FAILED (its signal, once);
- still NOTPAY/USERPAYING/ACCEPT: within WeChat Pay's 1-minute window it waits (still PROCESSING); after it,
  every sub-order is reversed → REVERSED, then queried once more to store their final states;
- 404, WeChat Pay has no such order [I]: within the window it waits (the charge may still be arriving);
  after it → FAILED, WeChat Pay never received it;
- anything else (no answer, 5xx, a bad signature, an answer that cannot be stored) is recorded and raised;
  the deduction stays PROCESSING.

The window is one minute from the last moment the deduct call could reach WeChat Pay
(``deductions.reachable_until``), not from when it was sent: a call still waiting for its answer (up to
``DEDUCT_TIMEOUT``) may be received late, so it is never concluded "not received" or reversed while open.
A late answer that arrives anyway is applied like any other (``deduction_records``): never lost.

Several hosts may settle at once: a query moves nothing by itself, every move takes the row lock and
happens once, and a reverse is claimed first (``reverse_requested_at``) so two hosts do not send it together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import wechatpay
from ..client import Answer
from ..display import local_time
from ..exceptions import DeductionStateError, WeChatPayError
from ..models import Deduction
from ..stored_messages import Message
from .deduction_records import apply_answer, finish, record_error
from .deductions import is_refusal, reachable_until
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .turns import in_turn

logger = logging.getLogger("django_papay.deductions")

# How long a claimed reverse keeps other hosts from sending it again (after a crash, it is claimed anew).
REVERSE_LEASE = timedelta(seconds=30)
NOT_FOUND_CODES = frozenset({wechatpay.ORDER_NOT_EXIST, wechatpay.RESOURCE_NOT_EXISTS})


@dataclass(frozen=True)
class Settled:
    """What settling did to one deduction: ``error`` is None when WeChat Pay answered.

    ``note``: what happens next to one still PROCESSING for a known reason (WeChat Pay has not received it
    yet, and when it becomes failed); blank otherwise.
    """

    deduction: Deduction
    error: Exception | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def settle(deduction: Deduction, now: datetime | None = None) -> Deduction:
    """Ask WeChat Pay about a PROCESSING deduction and act on it (see the module docstring).

    Returns the deduction (any status: a settled one is returned as it is). Raises WeChatPayError, after
    recording it, when WeChat Pay could not tell.
    """
    require_outside_atomic("settle")
    (settled,) = settle_many([deduction], now=now)
    if settled.error is not None:
        raise settled.error
    return settled.deduction


def settle_many(
    deductions: Sequence[Deduction], *, now: datetime | None = None, concurrency: int | None = None
) -> list[Settled]:
    """``settle`` for each deduction, calls in flight concurrently; never raises for one deduction's error."""
    require_outside_atomic("settle_many")
    now = now or timezone.now()
    errors: dict[int, Exception] = {}
    notes: dict[int, str] = {}
    for deduction in deductions:
        in_turn(deduction.refresh_from_db)
    open_ = [d for d in deductions if d.status == Deduction.Status.PROCESSING]

    to_reverse = [
        d for d, result in _sent(open_, _query, concurrency) if _each(errors, _after_query, d, result, now, notes)
    ]
    claimed = [d for d in to_reverse if _each(errors, _claim_reverse, d, now)]
    for deduction, result in _sent(claimed, _reverse, concurrency):
        _each(errors, _after_reverse, deduction, result)
    reversed_ = [d for d in claimed if d.status == Deduction.Status.REVERSED]
    for deduction, result in _sent(reversed_, _query, concurrency):
        if isinstance(result, Answer):  # the final states, for the record; the status is final already
            in_turn(partial(_store_quietly, deduction, result))
    return [Settled(deduction, errors.get(deduction.pk), notes.get(deduction.pk, "")) for deduction in deductions]


def _each(errors: dict[int, Exception], step: Callable[..., bool | None], deduction: Deduction, *args: Any) -> bool:
    """``step(deduction, *args)`` for one deduction of a bulk settle: its error is kept in ``errors`` and stops
    no other deduction.

    A database error too (an answer that could not be stored, a lock that timed out): it is logged and
    recorded where it can be, and the row is settled again on the next run. Each step is idempotent, so on
    SQLite it may run again after "locked" (``in_turn``).
    """
    try:
        return bool(in_turn(partial(step, deduction, *args)))
    except WeChatPayError as exc:
        errors[deduction.pk] = exc
    except DatabaseError as exc:
        logger.exception("deduction %s could not be settled", deduction)
        errors[deduction.pk] = exc
        try:
            record_error(deduction, Message(gettext_noop("Could not be settled: %(error)s"), error=exc))
        except DatabaseError:
            pass  # logged above; the row stays as it was
    return False


def _sent(
    deductions: list[Deduction], call: Callable[[Deduction], Call], concurrency: int | None
) -> Iterator[tuple[Deduction, Answer | WeChatPayError]]:
    """Each deduction with the result of its ``call``, the calls sent concurrently."""
    calls = [in_turn(partial(call, d)) for d in deductions]  # reads the sub-orders
    return zip(deductions, send_all(calls, concurrency=concurrency), strict=True)


def requery_many(deductions: Sequence[Deduction], *, concurrency: int | None = None) -> list[Settled]:
    """Ask WeChat Pay about deductions whatever their status, and store each answer; never reverses anything.

    For a final deduction that another record (the day's bill) says was charged: a FAILED or REVERSED one
    that the signed answer shows paid becomes SUCCEEDED (``state.correct_deduction``, its signal once). A query
    moves nothing by itself, so this is safe to run beside ``settle``; an open one is left to ``settle``.
    """
    require_outside_atomic("requery_many")
    errors: dict[int, Exception] = {}
    final = [d for d in deductions if d.status not in (Deduction.Status.CREATED, Deduction.Status.PROCESSING)]
    for deduction, result in _sent(final, _query, concurrency):
        if isinstance(result, WeChatPayError):
            errors[deduction.pk] = result
            continue
        _each(errors, apply_answer, deduction, result)
    return [Settled(deduction, errors.get(deduction.pk)) for deduction in deductions]


def reverse_deduction(deduction: Deduction, now: datetime | None = None) -> Deduction:
    """Reverse (撤销) a PROCESSING deduction with every one of its sub-orders; it becomes REVERSED.

    Raises DeductionStateError when it is not PROCESSING (or another process is reversing it), and
    WeChatPayError, after recording it, when WeChat Pay did not confirm.
    """
    require_outside_atomic("reverse_deduction")
    now = now or timezone.now()
    in_turn(deduction.refresh_from_db)
    if deduction.status != Deduction.Status.PROCESSING:
        raise DeductionStateError(
            _("Deduction %(number)s is %(status)s; only a processing deduction can be reversed.")
            % {"number": deduction.combine_out_trade_no, "status": deduction.get_status_display()}
        )
    if not in_turn(lambda: _claim_reverse(deduction, now)):
        in_turn(deduction.refresh_from_db)
        claimed = deduction.reverse_requested_at or now
        wait = max(1, int((claimed + REVERSE_LEASE - now).total_seconds() + 0.999))
        raise DeductionStateError(
            _(
                "Deduction %(number)s is being reversed by another request (sent %(ago)d s ago); if that one does "
                "not finish, it can be retried in %(wait)d s."
            )
            % {"number": deduction.combine_out_trade_no, "ago": max(0, (now - claimed).total_seconds()), "wait": wait}
        )
    for _deduction, result in _sent([deduction], _reverse, None):
        in_turn(partial(_after_reverse, deduction, result))
    for _deduction, result in _sent([deduction], _query, None):
        if isinstance(result, Answer):
            in_turn(partial(_store_quietly, deduction, result))
    return deduction


def _query(deduction: Deduction) -> Call:
    return Call("GET", wechatpay.path(wechatpay.DEDUCTION_PATH, combine_out_trade_no=deduction.combine_out_trade_no))


def _reverse(deduction: Deduction) -> Call:
    """Every sub-order of the original, unchanged [I]; no contract_id (the documentation has none)."""
    sub_orders = []
    for sub_order in deduction.sub_orders.all():
        item = {"mchid": sub_order.mchid, "sub_mchid": sub_order.sub_mchid, "out_trade_no": sub_order.out_trade_no}
        if sub_order.sub_appid:
            item["sub_appid"] = sub_order.sub_appid
        sub_orders.append(item)
    return Call(
        "POST",
        wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction.combine_out_trade_no),
        {"combine_appid": deduction.combine_appid, "sub_orders": sub_orders},
    )


def _window_passed(deduction: Deduction, now: datetime) -> bool:
    """WeChat Pay's minute has passed since the deduct call could last reach it."""
    until = reachable_until(deduction)
    return until is None or now >= until + wechatpay.DEDUCT_WINDOW


def not_received_note(deduction: Deduction, error: WeChatPayError) -> Message:
    """What staff read while WeChat Pay has no such order yet: not received, and failed after when."""
    until = reachable_until(deduction)
    return Message(
        gettext_noop(
            "WeChat Pay has not received this charge (%(error)s); it becomes failed after %(time)s unless it "
            "appears by then (papay_settle asks again)."
        ),
        error=error,
        time=local_time(until + wechatpay.DEDUCT_WINDOW if until else None),
    )


def _after_query(
    deduction: Deduction,
    result: Answer | WeChatPayError,
    now: datetime,
    notes: dict[int, str] | None = None,
) -> bool:
    """Apply the query's result; True when the deduction is due to be reversed. ``notes`` gets what happens
    next to one WeChat Pay has not received yet."""
    if isinstance(result, WeChatPayError):
        if not (is_refusal(result) and result.status == 404 and result.code in NOT_FOUND_CODES):
            record_error(deduction, result)
            raise result
        if _window_passed(deduction, now):
            finish(
                deduction,
                Deduction.Status.FAILED,
                error=Message(gettext_noop("WeChat Pay never received this charge: %(error)s"), error=result),
            )
        else:  # not there yet; settled again after the minute
            note = not_received_note(deduction, result)
            record_error(deduction, note)
            if notes is not None:
                notes[deduction.pk] = str(note)
        return False
    try:
        apply_answer(deduction, result)
    except WeChatPayError as exc:
        record_error(deduction, exc)
        raise
    states = set(deduction.sub_orders.values_list("trade_state", flat=True))
    return (
        deduction.status == Deduction.Status.PROCESSING
        and _window_passed(deduction, now)
        and bool(states & wechatpay.TRADE_NOT_FINAL)
    )


def _claim_reverse(deduction: Deduction, now: datetime) -> bool:
    free = Q(reverse_requested_at__isnull=True) | Q(reverse_requested_at__lt=now - REVERSE_LEASE)
    claimed = bool(
        Deduction.objects.filter(free, pk=deduction.pk, status=Deduction.Status.PROCESSING).update(
            reverse_requested_at=now
        )
    )
    if claimed:
        deduction.reverse_requested_at = now
    return claimed


def _release_reverse(deduction: Deduction) -> None:
    """Our reverse call has ended without a confirmation: nothing is in flight, so a retry need not wait out the
    lease. Only our own claim is released (another host's later one is left alone)."""
    Deduction.objects.filter(pk=deduction.pk, reverse_requested_at=deduction.reverse_requested_at).update(
        reverse_requested_at=None
    )


def _after_reverse(deduction: Deduction, result: Answer | WeChatPayError) -> None:
    if isinstance(result, WeChatPayError):
        _release_reverse(deduction)
        record_error(deduction, result)
        logger.warning("deduction %s not reversed: %s", deduction, result)
        raise result
    finish(deduction, Deduction.Status.REVERSED)
    logger.info("deduction %s reversed", deduction)


def _store_quietly(deduction: Deduction, answer: Answer) -> None:
    try:
        apply_answer(deduction, answer)
    except WeChatPayError as exc:
        logger.warning("deduction %s: the query after reversing was not stored: %s", deduction, exc)

"""What WeChat Pay's answers do to a stored deduction: each sub-order's result, and the one move to final.

Shared by the deduct call (``deductions``) and settling (``settlement``): the deduct answer and the query
answer have the same shape. Every move takes the deduction's row lock and goes through ``state``.

Answers can arrive late (a deduct call that outlived a settle) and out of order, so:

- a sub-order's final trade state is never replaced by a not-final one (a stale ACCEPT after REVOKED);
- a final deduction that a verified answer shows charged becomes SUCCEEDED (``state.correct_deduction``):
  money taken is never left recorded as not taken;
- what cannot be stored never raises after the money moved: an answer whose numbers or states cannot be
  stored is refused whole (InvalidResponseError: the deduction stays open, to be asked again), a field
  of lesser use (bank type, payer amount, time) is left out and said so in ``last_error``;
- the signals go out after the move is committed, and a receiver that raises is logged, never undoes it.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_noop

from .. import wechatpay
from ..client import Answer
from ..exceptions import InvalidResponseError
from ..models import Deduction, SubOrder
from ..stored_messages import Error, Message, error_columns
from . import state
from .deduction_input import text_problem
from .operations import mismatch
from .turns import in_turn

logger = logging.getLogger("django_papay.deductions")

# What a BigIntegerField holds (payer_amount): more is no amount WeChat Pay could have charged.
BIGINT_RANGE = range(-(2**63), 2**63)
# The fields an answer must be able to store; any other field can be left out.
NUMBER_LIMITS = {"out_trade_no": 32, "transaction_id": 64, "trade_state": 32}


def apply_answer(deduction: Deduction, answer: Answer) -> None:
    """Store WeChat Pay's answer (deduct or query: the same shape) per sub-order, and settle when it is final.

    InvalidResponseError, storing nothing, when the answer is not about this charge or cannot be stored
    (as good as no answer).
    """
    results = _results(deduction, answer)
    signal = in_turn(lambda: _apply(deduction, answer, results))
    in_turn(deduction.refresh_from_db)
    announce(signal, deduction)


def _apply(deduction: Deduction, answer: Answer, results: list[dict[str, Any]]) -> Signal | None:
    now = timezone.now()
    with transaction.atomic():
        locked = Deduction.objects.select_for_update().get(pk=deduction.pk)
        sub_orders = {sub_order.out_trade_no: sub_order for sub_order in locked.sub_orders.all()}
        left_out = [note for result in results for note in _store_result(sub_orders[result["out_trade_no"]], result)]
        payer = answer.data.get("combine_payer_info")
        if isinstance(payer, dict) and storable(payer.get("openid"), 128):
            locked.openid = payer["openid"]
        locked.queried_at = now
        if locked.status in state.OPEN_DEDUCTION_STATES:  # a final one keeps why it is final
            locked.set_error("")
        locked.save(update_fields=["openid", "queried_at", "last_error", "last_error_message", "updated_at"])
        states = [sub_order.trade_state for sub_order in sub_orders.values()]
        outcome = state.charge_outcome(states)
        if locked.status in state.OPEN_DEDUCTION_STATES:
            signal = state.finish_deduction(locked, outcome, at=now) if outcome else None
        else:
            was = locked.status
            signal = state.correct_deduction(locked, outcome, at=now) if outcome else None
            if signal is not None:
                logger.error(
                    "deduction %s was %s, but WeChat Pay's signed answer says the user was charged: it is "
                    "succeeded now (corrected_from=%s); check the user was not asked to pay twice",
                    locked,
                    was,
                    was,
                )
        notes = []
        if locked.status == Deduction.Status.PROCESSING and outcome is None:
            notes.append(Message(gettext_noop("Not final yet: trade_state %(states)s."), states=", ".join(states)))
        if left_out:
            notes.append(
                Message(gettext_noop("Not stored from WeChat Pay's answer: %(fields)s."), fields="; ".join(left_out))
            )
        notes = [note for note in notes if note.english() not in locked.last_error]  # a final one may be asked again
        if notes:
            locked.save(update_fields=[*locked.set_error(Message.join([locked.stored_error(), *notes])), "updated_at"])
    return signal


def finish(deduction: Deduction, status: str, *, error: Error = "") -> None:
    """Make an open deduction final under its row lock, sending its signal once (after the commit)."""

    def move() -> Signal | None:
        with transaction.atomic():
            locked = Deduction.objects.select_for_update().get(pk=deduction.pk)
            return state.finish_deduction(locked, status, at=timezone.now(), error=error)

    signal = in_turn(move)
    in_turn(deduction.refresh_from_db)
    announce(signal, deduction)


def record_error(deduction: Deduction, error: Error) -> None:
    """The outcome stays as it is (PROCESSING: unknown); the error is shown to staff."""

    def record() -> None:
        with transaction.atomic():
            Deduction.objects.filter(pk=deduction.pk).update(**error_columns(error), updated_at=timezone.now())

    in_turn(record)
    in_turn(deduction.refresh_from_db)


def announce(signal: Signal | None, deduction: Deduction) -> None:
    """Send a committed move's signal to every receiver; one that raises is logged and cannot undo the move.

    The money has moved (or surely not) by then: a receiver's failure (a CRM that is down) must not make
    ``deduct`` raise or lose the record.
    """
    if signal is None:
        return
    extra = {"corrected_from": deduction.corrected_from} if deduction.corrected_from else {}
    for receiver, result in signal.send_robust(sender=Deduction, deduction=deduction, **extra):
        if isinstance(result, Exception):
            logger.error(
                "deduction %s is %s; a receiver of its signal (%s) raised: %r",
                deduction,
                deduction.status,
                getattr(receiver, "__qualname__", receiver),
                result,
                exc_info=(type(result), result, result.__traceback__),
            )


def storable(value: object, limit: int) -> bool:
    """Text a column of ``limit`` characters keeps as it came: the rule for what we send (``text_problem``: no
    NUL or other control character, which PostgreSQL refuses, no lone surrogate), and not cut short."""
    return isinstance(value, str) and len(value) <= limit and not text_problem(value)


def _results(deduction: Deduction, answer: Answer) -> list[dict[str, Any]]:
    """The answer's sub-orders, after checking it is about this charge and this merchant, and storable."""
    data = answer.data
    ours = set(deduction.sub_orders.values_list("out_trade_no", flat=True))
    results = data.get("sub_orders")
    problems = []
    if data.get("combine_out_trade_no") != deduction.combine_out_trade_no:
        problems.append("combine_out_trade_no")
    if "combine_mchid" in data and data["combine_mchid"] != deduction.combine_mchid:
        problems.append("combine_mchid")
    if not (
        isinstance(results, list)
        and results
        and all(isinstance(result, dict) and result.get("out_trade_no") in ours for result in results)
    ):
        problems.append("sub_orders")
    if problems:
        raise mismatch(answer, "this deduction", problems)
    results = cast(list[dict[str, Any]], results)  # checked above: a non-empty list of dicts
    unstorable = [
        f"sub_orders[{index}].{name}"
        for index, result in enumerate(results)
        for name, limit in NUMBER_LIMITS.items()
        if result.get(name) is not None and not storable(result[name], limit)
    ]
    if unstorable:
        raise InvalidResponseError(
            f"the answer cannot be stored ({', '.join(unstorable)}: not text of its length without control "
            "characters); nothing of it was stored",
            code="ANSWER_UNSTORABLE",
            status=answer.status,
            request_id=answer.request_id,
        )
    return results


def _store_result(sub_order: SubOrder, result: dict[str, Any]) -> list[str]:
    """Store one sub-order's result; what was left out, as notes."""
    left_out = []
    given = result.get("amount")
    amount: dict[str, Any] = given if isinstance(given, dict) else {}
    trade_state = result.get("trade_state", "")
    if sub_order.trade_state in wechatpay.TRADE_STATES and sub_order.trade_state not in wechatpay.TRADE_NOT_FINAL:
        if trade_state in wechatpay.TRADE_NOT_FINAL:
            trade_state = sub_order.trade_state  # a stale answer: final states never go back to waiting
    sub_order.trade_state = trade_state or ""  # unknown values too, as they come
    sub_order.transaction_id = result.get("transaction_id") or sub_order.transaction_id
    if storable(result.get("bank_type"), 32):
        sub_order.bank_type = result["bank_type"] or sub_order.bank_type
    elif result.get("bank_type") is not None:
        left_out.append(f"{sub_order.out_trade_no} bank_type")
    success_time = wechatpay.parse_rfc3339(result.get("success_time"))
    if success_time is None and result.get("success_time") not in (None, ""):
        left_out.append(f"{sub_order.out_trade_no} success_time")
    sub_order.success_time = success_time or sub_order.success_time
    payer_amount = amount.get("payer_amount")
    if type(payer_amount) is int and payer_amount in BIGINT_RANGE:
        sub_order.payer_amount = payer_amount
    elif payer_amount is not None:
        left_out.append(f"{sub_order.out_trade_no} payer_amount")
    sub_order.save(update_fields=["transaction_id", "trade_state", "bank_type", "success_time", "payer_amount"])
    return left_out

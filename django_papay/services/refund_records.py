"""What WeChat Pay's answers do to a stored refund: the apply's acceptance, the query's status, a refusal.

Shared by ``refunds`` (the apply) and ``refund_settlement`` (the query, the re-send, the abnormal retry).
Every move takes the refund's row lock and goes through ``state`` (``move_refund``, ``fail_refund``); the
signals go out after the move is committed, to every receiver, and one that raises undoes nothing.

An answer that is not about this refund (another number, another amount, another refund id) or cannot be
stored is as good as no answer (InvalidResponseError): the refund stays as it was, to be asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import wechatpay
from ..client import Answer
from ..exceptions import InvalidResponseError, WeChatPayError
from ..models import Refund
from ..stored_messages import Error, error_columns
from . import state
from .deduction_input import text_problem
from .deductions import is_refusal
from .operations import mismatch
from .turns import in_turn

logger = logging.getLogger("django_papay.refunds")

# Signed refusals that leave nothing refunded but may pass: sent again later with the same number, never FAILED.
# NOT_ENOUGH: the sub-merchant's balance is short (wait, or send it as 垫付); FREQUENCY_LIMITED: WeChat Pay's
# one request per minute per order.
RETRY_LATER_CODES = frozenset({wechatpay.NOT_ENOUGH, wechatpay.FREQUENCY_LIMITED, wechatpay.SYSTEM_ERROR})
# What the refund's columns hold; an answer whose numbers or status do not fit is refused whole.
NUMBER_LIMITS = {"out_refund_no": wechatpay.MAX_REFUND_NO, "refund_id": 64, "status": 32}


def is_final_refusal(exc: WeChatPayError) -> bool:
    """True when WeChat Pay signed that it will not make this refund: a verified 4xx (not 429) other than the
    ones that pass with time (``RETRY_LATER_CODES``)."""
    return is_refusal(exc) and exc.code not in RETRY_LATER_CODES


def accepted(refund: Refund, answer: Answer) -> None:
    """The apply's 200: WeChat Pay accepted the refund (not yet refunded it). Stores ``refund_id``; it stays
    PROCESSING until the notification or a query says more."""
    data = _checked(refund, answer)

    def store() -> None:
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            locked.refund_id = locked.refund_id or data.get("refund_id") or ""
            if locked.status == Refund.Status.PROCESSING:
                locked.error_code = ""
                locked.set_error("")
            locked.save(update_fields=["refund_id", "error_code", "last_error", "last_error_message", "updated_at"])

    in_turn(store)
    in_turn(refund.refresh_from_db)


def reported(refund: Refund, answer: Answer) -> None:
    """A query's answer: the refund's status as WeChat Pay has it, moved through ``state.move_refund``."""
    data = _checked(refund, answer)
    status = data.get("status")
    success_time = wechatpay.parse_rfc3339(data.get("success_time"))

    def move() -> Signal | None:
        now = timezone.now()
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            locked.queried_at = now
            result = state.move_refund(
                locked,
                status if isinstance(status, str) else "",
                at=now,
                refund_id=_text(data, "refund_id", 64),
                channel=_text(data, "channel", 32),
                user_received_account=_text(data, "user_received_account", 128),
                success_time=success_time,
            )
            locked.save(update_fields=sorted({*result.fields, "queried_at", "updated_at"}))
        return result.signal

    announce(in_turn(move), refund)


def refused(refund: Refund, exc: WeChatPayError) -> None:
    """A failed apply: FAILED only for WeChat Pay's signed, final refusal; otherwise the error is shown and the
    refund stays PROCESSING, to be sent again with the same number (``settle_refund``)."""
    if is_final_refusal(exc):
        finish(refund, lambda locked: state.fail_refund(locked, error=exc, code=exc.code))
    else:
        record_error(refund, exc)
    logger.warning("refund %s: %s", refund, exc)


def finish(refund: Refund, move: Callable[[Refund], state.Move]) -> None:
    """Apply ``move`` to the locked refund, save what it changed, and send its signal after the commit."""

    def locked_move() -> Signal | None:
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            result = move(locked)
            if result.fields:
                locked.save(update_fields=result.fields)
        return result.signal

    announce(in_turn(locked_move), refund)


def record_error(refund: Refund, error: Error) -> None:
    """The status stays as it is; the error (and WeChat Pay's code, when it gave one) is shown to staff."""
    code = error.code if isinstance(error, WeChatPayError) else ""

    def record() -> None:
        with transaction.atomic():
            Refund.objects.filter(pk=refund.pk).update(
                **error_columns(error), error_code=code[:64], updated_at=timezone.now()
            )

    in_turn(record)
    in_turn(refund.refresh_from_db)


def announce(signal: Signal | None, refund: Refund, notification: Any = None) -> None:
    """Send a committed move's signal to every receiver; one that raises is logged and cannot undo the move."""
    in_turn(refund.refresh_from_db)
    if signal is None:
        return
    for receiver, result in signal.send_robust(sender=Refund, refund=refund, notification=notification):
        if isinstance(result, Exception):
            logger.error(
                "refund %s is %s; a receiver of its signal (%s) raised: %r",
                refund,
                refund.status,
                getattr(receiver, "__qualname__", receiver),
                result,
                exc_info=(type(result), result, result.__traceback__),
            )


def _checked(refund: Refund, answer: Answer) -> dict[str, Any]:
    """The answer's data, once it is shown to be about this refund and storable."""
    data = answer.data
    problems = []
    if data.get("out_refund_no") != refund.out_refund_no:
        problems.append("out_refund_no")
    refund_id = data.get("refund_id")
    if refund_id is not None and refund.refund_id and refund_id != refund.refund_id:
        problems.append("refund_id")
    amount = data.get("amount")
    if isinstance(amount, dict) and "refund" in amount and amount["refund"] != refund.amount:
        problems.append("amount.refund")
    elif amount is not None and not isinstance(amount, dict):
        problems.append("amount")
    if problems:
        raise mismatch(answer, "this refund", problems)
    unstorable = [
        name
        for name, limit in NUMBER_LIMITS.items()
        if data.get(name) is not None and not (isinstance(data[name], str) and _fits(data[name], limit))
    ]
    if unstorable:
        raise InvalidResponseError(
            f"the answer cannot be stored ({', '.join(unstorable)}: not text of its length without control "
            "characters); nothing of it was stored",
            code="ANSWER_UNSTORABLE",
            status=answer.status,
            request_id=answer.request_id,
        )
    return data


def _fits(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and not text_problem(value)


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    """A field of lesser use, kept when it fits its column, else left out ("")."""
    value = data.get(name)
    return value if isinstance(value, str) and _fits(value, limit) else ""

"""What WeChat Pay's answers do to a stored share: its id, each receiver's result, and the one move to final.

Shared by the share call, its query and the finish call (``sharing``). Every move takes the share's row lock
and goes through ``state.finish_share``; the signals go out after the commit, and a receiver that raises is
logged, never undoes the move. An answer about another share is refused whole (as good as no answer).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_noop

from .. import wechatpay
from ..client import Answer
from ..models import ProfitShare
from ..stored_messages import Error, Message, error_columns
from . import state
from .deduction_records import storable
from .operations import mismatch
from .turns import in_turn

logger = logging.getLogger("django_papay.sharing")


def apply_answer(share: ProfitShare, answer: Answer, *, finished: bool = False) -> None:
    """Store a share (or query) answer; ``finished``: a finish-order answer, which carries no status [I]."""
    data = answer.data
    if data.get("out_order_no") != share.out_order_no:
        raise mismatch(answer, "this share", ["out_order_no"])
    status = wechatpay.SHARE_FINISHED if finished else str(data.get("status") or "")

    def apply() -> Signal | None:
        with transaction.atomic():
            locked = ProfitShare.objects.select_for_update().get(pk=share.pk)
            if storable(data.get("order_id"), 64):
                locked.order_id = data["order_id"] or locked.order_id
            if storable(status, 32):
                locked.wechatpay_status = status
            notes = _store_receivers(locked, data.get("receivers"))
            noted = Message.join(notes)
            fields = locked.set_error(noted) if locked.status in state.OPEN_SHARE_STATES else []
            locked.save(update_fields=["order_id", "wechatpay_status", *fields, "updated_at"])
            if status == wechatpay.SHARE_FINISHED:
                return state.finish_share(locked, ProfitShare.Status.FINISHED, at=timezone.now(), error=noted)
            return None  # PROCESSING, or a status we do not know: still open, asked again later

    announce(in_turn(apply), share)


def fail(share: ProfitShare, error: Error) -> None:
    """WeChat Pay refused the share with a signed answer: FAILED, its signal once."""

    def move() -> Signal | None:
        with transaction.atomic():
            locked = ProfitShare.objects.select_for_update().get(pk=share.pk)
            return state.finish_share(locked, ProfitShare.Status.FAILED, at=timezone.now(), error=error)

    announce(in_turn(move), share)


def record_error(share: ProfitShare, error: Error) -> None:
    """The outcome stays unknown (PROCESSING): the error is shown to staff, the same number is sent again."""
    columns = error_columns(error)
    in_turn(lambda: ProfitShare.objects.filter(pk=share.pk).update(**columns, updated_at=timezone.now()))
    in_turn(share.refresh_from_db)


def announce(signal: Signal | None, share: ProfitShare) -> None:
    """Send a committed move's signal; a receiver that raises is logged and cannot undo the move."""
    in_turn(share.refresh_from_db)
    if signal is None:
        return
    for receiver, result in signal.send_robust(sender=ProfitShare, share=share):
        if isinstance(result, Exception):
            logger.error(
                "share %s is %s; a receiver of its signal (%s) raised: %r",
                share,
                share.status,
                getattr(receiver, "__qualname__", receiver),
                result,
                exc_info=(type(result), result, result.__traceback__),
            )


def _store_receivers(share: ProfitShare, given: Any) -> list[Message]:
    """Each receiver's result, matched by type, account and amount; notes for what was closed or left out."""
    notes: list[Message] = []
    if not isinstance(given, list):
        return notes
    unmatched = list(share.receivers.all())
    for item in given:
        if not isinstance(item, dict):
            continue
        receiver = next(
            (
                r
                for r in unmatched
                if r.type == item.get("type")
                and r.account == item.get("receiver_account")
                and r.amount == item.get("amount")
            ),
            None,
        )
        if receiver is None:
            continue
        unmatched.remove(receiver)
        for name, limit in (("result", 16), ("fail_reason", 64), ("detail_id", 64)):
            if storable(item.get(name), limit):
                setattr(receiver, name, item[name])
        receiver.finish_time = wechatpay.parse_rfc3339(item.get("finish_time")) or receiver.finish_time
        receiver.save(update_fields=["result", "fail_reason", "detail_id", "finish_time"])
        if receiver.result == wechatpay.RECEIVER_CLOSED:
            notes.append(
                Message(
                    gettext_noop("Receiver %(account)s was not paid (CLOSED: %(reason)s)."),
                    account=receiver.account,
                    reason=receiver.fail_reason or None,
                )
            )
    return notes

"""What WeChat Pay's answers do to a stored deduction: each sub-order's result, and the one move to final.

Shared by the deduct call (``deductions``) and settling (``settlement``): the deduct answer and the query
answer have the same shape. Every move takes the deduction's row lock and goes through ``state``.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import wechatpay
from ..client import Answer
from ..exceptions import WeChatPayError
from ..models import Deduction, SubOrder
from . import state
from .operations import mismatch
from .turns import in_turn


def apply_answer(deduction: Deduction, answer: Answer) -> None:
    """Store WeChat Pay's answer (deduct or query: the same shape) per sub-order, and settle when it is final.

    InvalidResponseError, storing nothing, when the answer is not about this charge (as good as no answer).
    """
    results = _results(deduction, answer)
    in_turn(lambda: _apply(deduction, answer, results))


def _apply(deduction: Deduction, answer: Answer, results: list[dict[str, Any]]) -> None:
    now = timezone.now()
    with transaction.atomic():
        locked = Deduction.objects.select_for_update().get(pk=deduction.pk)
        sub_orders = {sub_order.out_trade_no: sub_order for sub_order in locked.sub_orders.all()}
        for result in results:
            _store_result(sub_orders[result["out_trade_no"]], result)
        payer = answer.data.get("combine_payer_info")
        if isinstance(payer, dict) and isinstance(payer.get("openid"), str):
            locked.openid = payer["openid"][:128]
        locked.queried_at, locked.last_error = now, ""
        locked.save(update_fields=["openid", "queried_at", "last_error", "updated_at"])
        states = [sub_order.trade_state for sub_order in sub_orders.values()]
        outcome = state.charge_outcome(states)
        signal = state.settle_deduction(locked, outcome, at=now) if outcome else None
        if outcome is None and locked.status == Deduction.Status.PROCESSING:
            locked.last_error = _("Not final yet: trade_state %(states)s.") % {"states": ", ".join(states)}
            locked.save(update_fields=["last_error", "updated_at"])
        if signal is not None:
            signal.send(sender=Deduction, deduction=locked)
    deduction.refresh_from_db()


def finish(deduction: Deduction, status: str, *, error: str = "") -> None:
    """Make an open deduction final under its row lock, sending its signal once."""

    def move() -> None:
        with transaction.atomic():
            locked = Deduction.objects.select_for_update().get(pk=deduction.pk)
            signal = state.settle_deduction(locked, status, at=timezone.now(), error=error)
            if signal is not None:
                signal.send(sender=Deduction, deduction=locked)

    in_turn(move)
    deduction.refresh_from_db()


def record_error(deduction: Deduction, exc: WeChatPayError) -> None:
    """The outcome stays as it is (PROCESSING: unknown); the error is shown to staff."""

    def record() -> None:
        with transaction.atomic():
            Deduction.objects.filter(pk=deduction.pk).update(last_error=str(exc), updated_at=timezone.now())

    in_turn(record)
    deduction.refresh_from_db()


def _results(deduction: Deduction, answer: Answer) -> list[dict[str, Any]]:
    """The answer's sub-orders, after checking it is about this charge and this merchant."""
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
    return cast(list[dict[str, Any]], results)  # checked above: a non-empty list of dicts


def _store_result(sub_order: SubOrder, result: dict[str, Any]) -> None:
    given = result.get("amount")
    amount: dict[str, Any] = given if isinstance(given, dict) else {}
    payer_amount = amount.get("payer_amount")
    sub_order.transaction_id = _text(result.get("transaction_id"), 64) or sub_order.transaction_id
    sub_order.trade_state = _text(result.get("trade_state"), 32)  # unknown values too, as they come
    sub_order.bank_type = _text(result.get("bank_type"), 32) or sub_order.bank_type
    sub_order.success_time = wechatpay.parse_rfc3339(result.get("success_time")) or sub_order.success_time
    if type(payer_amount) is int:
        sub_order.payer_amount = payer_amount
    sub_order.save(update_fields=["transaction_id", "trade_state", "bank_type", "success_time", "payer_amount"])


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""

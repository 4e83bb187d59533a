"""Subsidies (补差): the platform pays a sub-order's ``subsidy_amount`` into it, before it can be shared.

WeChat Pay refuses to share a subsidised sub-order until its subsidy arrived ("分账补贴还未到账，不能受理
分账"), so ``sharing.share`` pays it first. ``out_subsidy_no`` is the request's idempotency key (spec,
"Subsidies"): a subsidy whose outcome is unknown is sent again with the same number, never paid twice. FAILED
only when WeChat Pay answers FAIL or refuses with a signed answer.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from .. import wechatpay
from ..client import Answer
from ..exceptions import WeChatPayError
from ..models import SubOrder, Subsidy
from ..stored_messages import error_columns
from .deduction_records import storable
from .deductions import is_refusal
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .turns import in_turn

logger = logging.getLogger("django_papay.sharing")

SUBSIDY_DESCRIPTION = "补差"
RESULTS = {
    wechatpay.SUBSIDY_SUCCESS: Subsidy.Result.SUCCESS,
    wechatpay.SUBSIDY_FAIL: Subsidy.Result.FAILED,
    wechatpay.SUBSIDY_REFUND: Subsidy.Result.REFUNDED,
}


def pay_subsidy(sub_order: SubOrder, description: str = SUBSIDY_DESCRIPTION) -> Subsidy:
    """Pay ``sub_order``'s subsidy (its ``subsidy_amount``) once; the Subsidy, whatever came of it.

    A paid one is returned as it is; an open one (unknown outcome) is sent again with its own number.
    """
    require_outside_atomic("pay_subsidy")
    subsidy = in_turn(
        lambda: Subsidy.objects.filter(sub_order=sub_order).exclude(result=Subsidy.Result.FAILED).order_by("pk").first()
    )
    if subsidy is None:
        subsidy = in_turn(
            lambda: Subsidy.objects.create(
                sub_order=sub_order, amount=sub_order.subsidy_amount or 0, description=description[:80]
            )
        )
    if subsidy.result not in (Subsidy.Result.CREATED, Subsidy.Result.PROCESSING):
        return subsidy
    in_turn(lambda: Subsidy.objects.filter(pk=subsidy.pk).update(result=Subsidy.Result.PROCESSING))
    payload = {
        "sub_mchid": sub_order.sub_mchid,
        "transaction_id": sub_order.transaction_id,
        "amount": subsidy.amount,
        "description": subsidy.description,
        "out_subsidy_no": subsidy.out_subsidy_no,
    }
    (result,) = send_all([Call("POST", wechatpay.SUBSIDY_CREATE_PATH, payload)])
    in_turn(lambda: _store(subsidy, result))
    in_turn(subsidy.refresh_from_db)
    return subsidy


def _store(subsidy: Subsidy, result: Answer | WeChatPayError) -> None:
    fields: dict[str, object] = {"updated_at": timezone.now()}
    if isinstance(result, WeChatPayError):
        fields.update(error_columns(result))
        if is_refusal(result):
            fields["result"] = Subsidy.Result.FAILED
        logger.warning("subsidy %s: %s", subsidy, result)
    elif result.data.get("transaction_id") != subsidy.sub_order.transaction_id:
        fields.update(error_columns("the answer does not match this subsidy (transaction_id)"))
    else:
        fields["result"] = RESULTS.get(str(result.data.get("result")), Subsidy.Result.PROCESSING)
        fields.update(error_columns(""))
        if storable(result.data.get("subsidy_id"), 64):
            fields["subsidy_id"] = result.data["subsidy_id"]
    Subsidy.objects.filter(pk=subsidy.pk).update(**fields)

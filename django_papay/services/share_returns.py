"""Returning shared money (分账回退): a merchant receiver gives a share back to the sub-merchant.

Needed before refunding a sub-order whose money was shared: WeChat Pay refunds from the sub-merchant's
account, so the shared part comes back first (spec, "Refund interplay"). Only a FINISHED share, only its
MERCHANT_ID receivers, within 180 days. ``out_return_no`` is idempotent: a return whose outcome is unknown
(no answer, 429, 5xx) stays PROCESSING and is sent again with the same number; FAILED only when WeChat Pay
says so (``FAILED``/``TIME_OUT_CLOSED`` — then a new return, with a new number) or refuses it signed.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import conf, wechatpay
from ..client import Answer
from ..exceptions import SharingStateError, WeChatPayError
from ..models import ProfitShare, ShareReturn
from ..stored_messages import Message, error_columns
from .deduction_records import storable
from .deductions import is_refusal
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .turns import in_turn

logger = logging.getLogger("django_papay.sharing")

RETURN_DESCRIPTION = "分账回退"
RESULTS = {
    wechatpay.RETURN_SUCCESS: ShareReturn.Result.SUCCESS,
    wechatpay.RETURN_FAILED: ShareReturn.Result.FAILED,
    wechatpay.RETURN_TIME_OUT_CLOSED: ShareReturn.Result.FAILED,
    wechatpay.RETURN_PROCESSING: ShareReturn.Result.PROCESSING,
}
OPEN_RESULTS = (ShareReturn.Result.CREATED, ShareReturn.Result.PROCESSING)


def returnable(share: ProfitShare, return_mchid: str) -> int:
    """What ``return_mchid`` received from ``share`` and has not returned (nor is returning), in fen."""
    received = (
        share.receivers.filter(type=wechatpay.MERCHANT_ID, account=return_mchid)
        .exclude(result=wechatpay.RECEIVER_CLOSED)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    returned = (
        share.returns.filter(return_mchid=return_mchid)
        .exclude(result=ShareReturn.Result.FAILED)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    return received - returned


def return_share(
    share: ProfitShare, amount: int, *, return_mchid: str | None = None, description: str = RETURN_DESCRIPTION
) -> ShareReturn:
    """Return ``amount`` fen of a FINISHED share from ``return_mchid`` (default: the platform) to the sub-merchant.

    Raises, sending nothing: ValidationError for a bad amount or one above what that receiver holds of it,
    SharingStateError for a share not FINISHED. Never raises once sent.
    """
    require_outside_atomic("return_share")
    return_mchid = return_mchid or conf.mchid()
    in_turn(share.refresh_from_db)
    if share.kind != ProfitShare.Kind.SHARE or share.status != ProfitShare.Status.FINISHED:
        raise SharingStateError(
            _("Only a finished share can be returned; %(number)s is %(status)s.")
            % {"number": share.out_order_no, "status": share.get_status_display()}
        )
    if type(amount) is not int or amount < 1:
        raise ValidationError({"amount": _("Give a whole number of fen, at least 1.")})
    left = returnable(share, return_mchid)
    if amount > left:
        raise ValidationError(
            {
                "amount": _("%(mchid)s holds %(left)d fen of share %(number)s; %(amount)d cannot be returned.")
                % {"mchid": return_mchid, "left": left, "number": share.out_order_no, "amount": amount}
            }
        )
    stored = in_turn(
        lambda: ShareReturn.objects.create(
            share=share, return_mchid=return_mchid, amount=amount, description=description[:80]
        )
    )
    return send_return(stored)


def send_return(share_return: ShareReturn) -> ShareReturn:
    """Send an open return (again, with the same ``out_return_no``, when its outcome was unknown)."""
    require_outside_atomic("send_return")
    if share_return.result not in OPEN_RESULTS:
        return share_return
    share = share_return.share
    payload = {
        "sub_mchid": share.sub_order.sub_mchid,
        "out_order_no": share.out_order_no,
        "out_return_no": share_return.out_return_no,
        "return_mchid": share_return.return_mchid,
        "amount": share_return.amount,
        "description": share_return.description,
    }
    in_turn(lambda: ShareReturn.objects.filter(pk=share_return.pk).update(result=ShareReturn.Result.PROCESSING))
    (result,) = send_all([Call("POST", wechatpay.RETURN_ORDERS_PATH, payload)])
    in_turn(lambda: _store(share_return, result))
    in_turn(share_return.refresh_from_db)
    return share_return


def settle_return(share_return: ShareReturn) -> ShareReturn:
    """Query an open return; one WeChat Pay never received is sent again with the same number."""
    require_outside_atomic("settle_return")
    in_turn(share_return.refresh_from_db)
    if share_return.result not in OPEN_RESULTS:
        return share_return
    share = share_return.share
    query = urlencode(
        {
            "sub_mchid": share.sub_order.sub_mchid,
            "out_order_no": share.out_order_no,
            "out_return_no": share_return.out_return_no,
        }
    )
    (result,) = send_all([Call("GET", f"{wechatpay.RETURN_ORDERS_PATH}?{query}")])
    if isinstance(result, WeChatPayError) and is_refusal(result) and result.status == 404:
        return send_return(share_return)
    in_turn(lambda: _store(share_return, result))
    in_turn(share_return.refresh_from_db)
    return share_return


def _store(share_return: ShareReturn, result: Answer | WeChatPayError) -> None:
    fields: dict[str, object] = {"updated_at": timezone.now()}
    if isinstance(result, WeChatPayError):
        fields.update(error_columns(result))
        if is_refusal(result):
            fields["result"] = ShareReturn.Result.FAILED
        logger.warning("share return %s: %s", share_return, result)
    elif result.data.get("out_return_no") != share_return.out_return_no:
        fields.update(error_columns("the answer does not match this return (out_return_no)"))
    else:
        given = result.data.get("result")
        fields["result"] = RESULTS.get(str(given), ShareReturn.Result.PROCESSING)
        fields.update(error_columns("" if given in RESULTS else f"result {given!r}"))
        if given == wechatpay.RETURN_TIME_OUT_CLOSED:
            closed = gettext_noop("TIME_OUT_CLOSED: closed by WeChat Pay; return again with a new number.")
            fields.update(error_columns(Message(closed)))
        for name, limit in (("return_id", 64), ("fail_reason", 64)):
            if storable(result.data.get(name), limit):
                fields[name] = result.data[name]
    ShareReturn.objects.filter(pk=share_return.pk).update(**fields)

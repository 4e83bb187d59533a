"""The refund endpoints (平台收付通 退款): apply, query by number or by id, re-drive an ABNORMAL refund.

A refund is of one paid sub-order (found in ``state.deductions`` by ``out_trade_no`` or ``transaction_id``).
The same ``out_refund_no`` refunds once however often it is sent: a repeat is answered with the refund taken
before. More than is left, or a 51st refund, is refused (INVALID_REQUEST); with ``refunds.not_enough`` a
refund from the sub-merchant's balance is refused NOT_ENOUGH. The apply's answer means "accepted"; a refund
that ends at once (``refunds.outcome`` SUCCESS, ABNORMAL or CLOSED) has its REFUND.* delivered just after.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django_papay import wechatpay

from .. import validation
from ..records import RecordedRequest
from ..refund_book import Refused
from ..refund_notices import NOTIFY_AFTER, RefundNotices
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..validation import FieldRule

# The HTTP status of NOT_ENOUGH [I: the code is documented, the status is not].
NOT_ENOUGH_STATUS = 403
PAID = ("SUCCESS", "REFUND")

AMOUNT_FIELDS = (
    FieldRule("refund", validation.positive_integer),
    FieldRule("total", validation.positive_integer),
    FieldRule("currency", validation.one_of(wechatpay.CURRENCY)),
)
APPLY_FIELDS = (
    FieldRule("sub_mchid", validation.digits),
    FieldRule("sp_appid", validation.string(1, 32)),
    FieldRule("sub_appid", validation.string(1, 32), required=False),
    FieldRule("transaction_id", validation.string(1, 32), required=False),
    FieldRule("out_trade_no", validation.trade_no, required=False),
    FieldRule("out_refund_no", validation.refund_no),
    FieldRule("reason", validation.string(0, wechatpay.MAX_REFUND_REASON), required=False),
    FieldRule("amount", validation.object_of(AMOUNT_FIELDS)),
    FieldRule("notify_url", validation.string(1, 256), required=False),
    FieldRule(
        "refund_account",
        validation.one_of(wechatpay.REFUND_SOURCE_SUB_MERCHANT, wechatpay.REFUND_SOURCE_PARTNER_ADVANCE),
        required=False,
    ),
)
REFUSALS = {
    "used": "退款单号已用于其他退款 (out_refund_no used before)",
    "too_many": "退款次数超过限制 (at most 50 refunds per order)",
    "over": "申请退款金额超过订单可退金额",
}
# What the apply answers: the refund accepted, not its result.
APPLY_ANSWER = ("refund_id", "out_refund_no", "create_time", "refund_account")
# What the query answers (``notify_url`` and ``sub_mchid`` are the book's own).
QUERY_ANSWER = (
    "refund_id",
    "out_refund_no",
    "transaction_id",
    "out_trade_no",
    "channel",
    "user_received_account",
    "success_time",
    "create_time",
    "status",
    "amount",
    "refund_account",
)


def apply(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST /v3/ecommerce/refunds/apply: take a refund of a paid sub-order, once per number."""
    state.refunds.counted(_number(request.body))
    data = validation.check_body(request.body, APPLY_FIELDS)
    if not (data.get("transaction_id") or data.get("out_trade_no")):
        raise ApiError(400, wechatpay.PARAM_ERROR, "transaction_id 和 out_trade_no 必须填一个")
    sub_order = state.deductions.sub_order(
        out_trade_no=data.get("out_trade_no"), transaction_id=data.get("transaction_id")
    )
    if sub_order is None or sub_order["sub_mchid"] != data["sub_mchid"] or sub_order.get("trade_state") not in PAID:
        raise ApiError(404, wechatpay.ORDER_NOT_EXIST, "订单不存在或未支付")
    amount = data["amount"]
    if amount["total"] != sub_order["amount"]["total_amount"]:
        raise ApiError(400, wechatpay.PARAM_ERROR, "订单金额与原订单不一致 (amount.total)")
    advanced = data.get("refund_account") == wechatpay.REFUND_SOURCE_PARTNER_ADVANCE
    if state.refunds.not_enough and not advanced and state.refunds.get(data["out_refund_no"]) is None:
        raise ApiError(NOT_ENOUGH_STATUS, wechatpay.NOT_ENOUGH, "余额不足")
    try:
        # "同一退款单号多次请求只退一笔": a number taken before is answered with the refund taken then.
        refund, new = state.refunds.take(data, sub_order, data.get("notify_url", ""))
    except Refused as refused:
        raise ApiError(400, wechatpay.INVALID_REQUEST, REFUSALS[refused.reason]) from None
    if new and refund["status"] != wechatpay.REFUND_PROCESSING:
        RefundNotices(state).notify_refund(refund["out_refund_no"], delay=NOTIFY_AFTER, wait=False)
    return Reply.json(200, _answer(refund, APPLY_ANSWER))


def query_by_number(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/refunds/out-refund-no/{out_refund_no}?sub_mchid=: the refund as it stands."""
    return Reply.json(
        200, _answer(_known(state, request, state.refunds.get(unquote(match["out_refund_no"]))), QUERY_ANSWER)
    )


def query_by_id(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/refunds/id/{refund_id}?sub_mchid=: the refund as it stands."""
    return Reply.json(
        200, _answer(_known(state, request, state.refunds.by_id(unquote(match["refund_id"]))), QUERY_ANSWER)
    )


def retry_abnormal(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/refunds/{refund_id}/apply-abnormal-refund: an ABNORMAL refund is paid again, elsewhere; it is
    PROCESSING, and ends SUCCESS at once (REFUND.SUCCESS follows) unless ``refunds.outcome`` says otherwise."""
    body = validation.check_body(request.body, (FieldRule("sub_mchid", validation.digits),))
    refund = state.refunds.by_id(unquote(match["refund_id"]))
    if refund is None or refund["sub_mchid"] != body["sub_mchid"]:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "退款单不存在")
    if refund["status"] != wechatpay.REFUND_ABNORMAL:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "退款单状态不是退款异常")
    number = refund["out_refund_no"]
    state.refunds.finish(number, wechatpay.REFUND_PROCESSING)
    answer = _answer(state.refunds.get(number) or refund, QUERY_ANSWER)
    outcome = state.refunds.outcome if state.refunds.outcome != wechatpay.REFUND_ABNORMAL else wechatpay.REFUND_SUCCESS
    if outcome != wechatpay.REFUND_PROCESSING:
        state.refunds.finish(number, outcome)
        RefundNotices(state).notify_refund(number, delay=NOTIFY_AFTER, wait=False)
    return Reply.json(200, answer)


def _known(state: SandboxState, request: RecordedRequest, refund: dict[str, Any] | None) -> dict[str, Any]:
    """The refund a query names, under the ``sub_mchid`` it must give (a common mistake to leave out)."""
    sub_mchid = parse_qs(urlsplit(request.path).query).get("sub_mchid", [""])[0]
    if not sub_mchid:
        raise ApiError(400, wechatpay.PARAM_ERROR, "sub_mchid 为必填参数")
    if refund is None or refund["sub_mchid"] != sub_mchid:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "退款单不存在")
    return refund


def _answer(refund: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    answer = {name: refund[name] for name in fields if name in refund}
    if "amount" not in fields:
        answer["amount"] = {
            name: refund["amount"][name]
            for name in ("refund", "payer_refund", "discount_refund", "currency", "advance")
            if name in refund["amount"]
        }
    return answer


def _number(body: bytes) -> object:
    try:
        return json.loads(body).get("out_refund_no")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None

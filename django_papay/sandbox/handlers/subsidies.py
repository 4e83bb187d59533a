"""The subsidy endpoint (补差): the platform pays a sub-order's ``subsidy_amount`` into its frozen funds.

A sub-order charged with ``subsidy_amount`` cannot be shared until it arrives. ``out_subsidy_no`` makes a
request idempotent: the same number again answers the same subsidy. The platform's own balance pays it.
"""

from __future__ import annotations

import re

from django_papay import wechatpay

from .. import validation
from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..validation import FieldRule

SUBSIDY_FIELDS = (
    FieldRule("sub_mchid", validation.digits),
    FieldRule("transaction_id", validation.string(1, 32)),
    FieldRule("amount", validation.positive_integer),
    FieldRule("description", validation.string(1, 80)),
    FieldRule("out_subsidy_no", validation.string(1, 64), required=False),
)


def create(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST /v3/ecommerce/subsidies/create: pay the subsidy; SUCCESS at once."""
    data = validation.check_body(request.body, SUBSIDY_FIELDS)
    book = state.sharing
    with book.lock:
        number = data.get("out_subsidy_no")
        if number and number in book.subsidies:
            return Reply.json(200, book.subsidies[number])
        order = book.order(data["transaction_id"])
        if order is None or order["sub_mchid"] != data["sub_mchid"] or not book.paid(data["transaction_id"]):
            raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "订单不存在")
        if data["amount"] > order["subsidy_amount"] - order["subsidy_paid"]:
            raise ApiError(400, wechatpay.INVALID_REQUEST, "补差金额超过订单的补差金额 (more than subsidy_amount)")
        order["subsidy_paid"] += data["amount"]
        order["frozen"] += data["amount"]
        book.accounts[state.mchid] -= data["amount"]
        answer = {
            "sub_mchid": data["sub_mchid"],
            "transaction_id": data["transaction_id"],
            "subsidy_id": "3010" + wechatpay.nonce(24, "0123456789"),
            "description": data["description"],
            "amount": data["amount"],
            "result": wechatpay.SUBSIDY_SUCCESS,
            "success_time": wechatpay.format_rfc3339(),
        }
        if number:
            book.subsidies[number] = answer
    book.changed()
    return Reply.json(200, answer)

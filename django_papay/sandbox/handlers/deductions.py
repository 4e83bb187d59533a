"""The deduction endpoints (合单代扣 免密支付): charge a signed contract, query a charge, reverse (撤销) it.

Synchronous, with no notification: the deduct answer is the result. A charge needs a signed contract (its
``contract_id``); a terminated or unknown one answers CONTRACT_NOT_EXIST, and a number received before is
refused (each order is charged once). All of them read and change ``state.deductions``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from django_papay import wechatpay

from .. import validation
from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..validation import FieldRule

# The HTTP status of CONTRACT_NOT_EXIST [I: the code is documented, the status is not].
CONTRACT_NOT_EXIST_STATUS = 400

AMOUNT_FIELDS = (
    FieldRule("total_amount", validation.positive_integer),
    FieldRule("currency", validation.one_of(wechatpay.CURRENCY)),
)
SETTLE_INFO_FIELDS = (
    FieldRule("profit_sharing", validation.boolean, required=False),
    FieldRule("subsidy_amount", validation.non_negative_integer, required=False),
)
SUB_ORDER_FIELDS = (
    FieldRule("mchid", validation.digits),
    FieldRule("sub_mchid", validation.digits),
    FieldRule("sub_appid", validation.string(1, 32), required=False),
    FieldRule("out_trade_no", validation.trade_no),
    FieldRule("description", validation.string(1, 127)),
    FieldRule("attach", validation.string(0, 128), required=False),
    FieldRule("amount", validation.object_of(AMOUNT_FIELDS)),
    FieldRule("settle_info", validation.object_of(SETTLE_INFO_FIELDS), required=False),
    FieldRule("sub_risk_info", validation.string(0, 255), required=False),  # no length documented: 255 [I]
)
DEDUCT_FIELDS = (
    FieldRule("combine_appid", validation.string(1, 32)),
    FieldRule("combine_mchid", validation.digits),
    FieldRule("combine_out_trade_no", validation.trade_no),
    FieldRule("contract_id", validation.string(1, 32)),
    FieldRule("sub_orders", validation.list_of(SUB_ORDER_FIELDS, 1, wechatpay.MAX_SUB_ORDERS)),
    FieldRule("risk_info", validation.string(0, 255), required=False),
)
REVERSE_SUB_ORDER_FIELDS = (
    FieldRule("mchid", validation.digits),
    FieldRule("sub_mchid", validation.digits),
    FieldRule("out_trade_no", validation.trade_no),
    FieldRule("sub_appid", validation.string(1, 32), required=False),
)
REVERSE_FIELDS = (
    FieldRule("combine_appid", validation.string(1, 32)),
    FieldRule("sub_orders", validation.list_of(REVERSE_SUB_ORDER_FIELDS, 1, wechatpay.MAX_SUB_ORDERS)),
)


def deduct(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST /v3/ecommerce/combine-papay/transactions: charge a signed contract, answering the result."""
    state.deductions.counted(_number(request.body))
    data = validation.check_body(request.body, DEDUCT_FIELDS)
    if data["combine_mchid"] != state.mchid or any(sub["mchid"] != state.mchid for sub in data["sub_orders"]):
        raise ApiError(403, wechatpay.NO_AUTH, "combine_mchid 与商户号不匹配 (not this merchant)")
    contract = state.contracts.by_contract_id(data["contract_id"])
    if contract is None or contract.get("contract_state") != wechatpay.SIGNED:
        raise ApiError(CONTRACT_NOT_EXIST_STATUS, wechatpay.CONTRACT_NOT_EXIST, "签约协议不存在或已解约")
    charge = state.deductions.charge(data, openid=contract.get("openid") or "")
    if charge is None:
        # Each order is charged once [C]; what WeChat Pay answers to a re-sent number is not documented [I].
        raise ApiError(400, wechatpay.INVALID_REQUEST, "商户订单号重复 (received before)")
    for sent, charged in zip(data["sub_orders"], charge["sub_orders"], strict=True):
        state.sharing.register({**sent, "transaction_id": charged["transaction_id"]})
    return Reply.json(200, charge)


def query(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/transactions/{combine_out_trade_no}: the charge as it stands."""
    return Reply.json(200, _known(state, match))


def reverse(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/transactions/{combine_out_trade_no}/reverse: cancel the charge with every sub-order; 204."""
    charge = _known(state, match)
    data = validation.check_body(request.body, REVERSE_FIELDS)
    if data["combine_appid"] != charge["combine_appid"] or not _every_sub_order(charge, data["sub_orders"]):
        raise ApiError(400, wechatpay.PARAM_ERROR, "sub_orders 与原订单不一致 (name every sub-order of the charge)")
    state.deductions.reverse(charge["combine_out_trade_no"])
    return Reply(204, b"")


def _known(state: SandboxState, match: re.Match[str]) -> dict[str, Any]:
    charge = state.deductions.get(unquote(match["combine_out_trade_no"]))
    if charge is None:
        raise ApiError(404, wechatpay.ORDER_NOT_EXIST, "订单不存在")
    return charge


def _every_sub_order(charge: dict[str, Any], sub_orders: list[dict[str, Any]]) -> bool:
    """A reverse names every sub-order of the charge, unchanged [I]."""

    def key(sub: dict[str, Any]) -> tuple:
        return sub["mchid"], sub["sub_mchid"], sub["out_trade_no"], sub.get("sub_appid")

    return sorted(map(key, charge["sub_orders"])) == sorted(map(key, sub_orders))


def _number(body: bytes) -> object:
    try:
        return json.loads(body).get("combine_out_trade_no")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None

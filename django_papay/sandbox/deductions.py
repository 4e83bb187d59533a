"""Deductions (合单代扣 免密支付) in the sandbox: the charge, its query and its reverse (撤销).

WeChat Pay's book of charges, by ``combine_out_trade_no``: what was asked, each sub-order's trade state and
transaction id. A charge needs a signed contract (its ``contract_id``); a terminated or unknown one answers
CONTRACT_NOT_EXIST, and a number already received is refused (each order is charged once). ``posts`` counts
every deduct POST per number, so a test can prove that nothing was ever sent twice.

Switches: ``trade_state`` is what the next charges end in (SUCCESS by default; ACCEPT leaves them waiting
until ``settle_later``; PAYERROR refuses them); the queued faults do the rest ("timeout" takes the charge and
answers too late, "system_error_after" takes it and answers 500).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any
from urllib.parse import unquote

from django_papay import wechatpay

from . import validation
from .answers import Answer, ApiError
from .validation import FieldRule

# Status of a deduction against a contract that does not exist or has ended [I: the code is documented,
# the HTTP status is not].
CONTRACT_NOT_EXIST_STATUS = 400


def _trade_no(value: Any) -> str:
    problem = validation.string(1, 32)(value)
    if problem:
        return problem
    allowed = set(wechatpay.ALPHANUMERIC + "_-|*@")
    return "" if set(value) <= allowed else "may contain only digits, letters and _-|*@"


def _digits(value: Any) -> str:
    problem = validation.string(1, 32)(value)
    return problem or ("" if value.isascii() and value.isdigit() else "must be digits")


def _currency(value: Any) -> str:
    return "" if value == wechatpay.CURRENCY else f"must be {wechatpay.CURRENCY}"


AMOUNT_FIELDS = (FieldRule("total_amount", validation.positive_integer), FieldRule("currency", _currency))
SETTLE_INFO_FIELDS = (
    FieldRule("profit_sharing", validation.boolean, required=False),
    FieldRule("subsidy_amount", validation.non_negative_integer, required=False),
)
SUB_ORDER_FIELDS = (
    FieldRule("mchid", _digits),
    FieldRule("sub_mchid", _digits),
    FieldRule("sub_appid", validation.string(1, 32), required=False),
    FieldRule("out_trade_no", _trade_no),
    FieldRule("description", validation.string(1, 127)),
    FieldRule("attach", validation.string(0, 128), required=False),
    FieldRule("amount", validation.object_of(AMOUNT_FIELDS)),
    FieldRule("settle_info", validation.object_of(SETTLE_INFO_FIELDS), required=False),
)
DEDUCT_FIELDS = (
    FieldRule("combine_appid", validation.string(1, 32)),
    FieldRule("combine_mchid", _digits),
    FieldRule("combine_out_trade_no", _trade_no),
    FieldRule("contract_id", validation.string(1, 32)),
    FieldRule("sub_orders", validation.list_of(SUB_ORDER_FIELDS, 1, wechatpay.MAX_SUB_ORDERS)),
    FieldRule("risk_info", validation.string(0, 255), required=False),
)
REVERSE_SUB_ORDER_FIELDS = (
    FieldRule("mchid", _digits),
    FieldRule("sub_mchid", _digits),
    FieldRule("out_trade_no", _trade_no),
    FieldRule("sub_appid", validation.string(1, 32), required=False),
)
REVERSE_FIELDS = (
    FieldRule("combine_appid", validation.string(1, 32)),
    FieldRule("sub_orders", validation.list_of(REVERSE_SUB_ORDER_FIELDS, 1, wechatpay.MAX_SUB_ORDERS)),
)


class DeductionBook:
    """Charges by ``combine_out_trade_no``, as the query answers them; thread-safe."""

    def __init__(self) -> None:
        self.trade_state = wechatpay.TRADE_SUCCESS
        self.posts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._charges: dict[str, dict[str, Any]] = {}

    def get(self, combine_out_trade_no: str) -> dict[str, Any] | None:
        with self._lock:
            charge = self._charges.get(combine_out_trade_no)
            return None if charge is None else _copy(charge)

    def counted(self, combine_out_trade_no: object) -> None:
        if isinstance(combine_out_trade_no, str):
            with self._lock:
                self.posts[combine_out_trade_no] += 1

    def charge(self, data: dict[str, Any], *, openid: str, at: str) -> dict[str, Any]:
        """Take a validated charge: every sub-order gets a transaction id and the switched ``trade_state``.

        Raises KeyError naming a number that was received before (the charge is then refused).
        """
        with self._lock:
            used = {sub["out_trade_no"] for charge in self._charges.values() for sub in charge["sub_orders"]}
            number = data["combine_out_trade_no"]
            if number in self._charges or used & {sub["out_trade_no"] for sub in data["sub_orders"]}:
                raise KeyError(number)
            charge = {
                "combine_appid": data["combine_appid"],
                "combine_mchid": data["combine_mchid"],
                "combine_out_trade_no": number,
                "sub_orders": [_sub_order(sub, self.trade_state, at) for sub in data["sub_orders"]],
                "combine_payer_info": {"openid": openid},
            }
            self._charges[number] = charge
            return _copy(charge)

    def settle_later(self, combine_out_trade_no: str, trade_state: str = wechatpay.TRADE_SUCCESS) -> None:
        """A waiting (ACCEPT) charge ends in ``trade_state``, as WeChat Pay finishes it in the background."""
        with self._lock:
            for sub in self._charges[combine_out_trade_no]["sub_orders"]:
                _set_state(sub, trade_state, wechatpay.format_rfc3339())

    def reverse(self, combine_out_trade_no: str) -> None:
        with self._lock:
            for sub in self._charges[combine_out_trade_no]["sub_orders"]:
                _set_state(sub, "REVOKED", "")

    def clear(self) -> None:
        with self._lock:
            self._charges.clear()
            self.posts.clear()
        self.trade_state = wechatpay.TRADE_SUCCESS


def _sub_order(sub: dict[str, Any], trade_state: str, at: str) -> dict[str, Any]:
    answer = {
        "mchid": sub["mchid"], "sub_mchid": sub["sub_mchid"], "out_trade_no": sub["out_trade_no"],
        "transaction_id": "4200" + wechatpay.nonce(24, "0123456789"), "trade_type": wechatpay.TRADE_TYPE,
        "amount": {"total_amount": sub["amount"]["total_amount"], "currency": wechatpay.CURRENCY},
    }
    for name in ("sub_appid", "attach"):
        if name in sub:
            answer[name] = sub[name]
    _set_state(answer, trade_state, at)
    return answer


def _set_state(sub: dict[str, Any], trade_state: str, at: str) -> None:
    sub["trade_state"] = trade_state
    if trade_state == wechatpay.TRADE_SUCCESS:
        sub.update(bank_type="OTHERS", success_time=at)
        sub["amount"]["payer_amount"] = sub["amount"]["total_amount"]
        sub["amount"]["payer_currency"] = wechatpay.CURRENCY


def _copy(charge: dict[str, Any]) -> dict[str, Any]:
    return {**charge, "sub_orders": [{**sub, "amount": dict(sub["amount"])} for sub in charge["sub_orders"]]}


def reverse_matches(charge: dict[str, Any], sub_orders: list[dict[str, Any]]) -> bool:
    """A reverse must name every sub-order of the charge, unchanged [I]."""
    def key(sub: dict[str, Any]) -> tuple:
        return sub["mchid"], sub["sub_mchid"], sub["out_trade_no"], sub.get("sub_appid")

    return sorted(map(key, charge["sub_orders"])) == sorted(map(key, sub_orders))


# --- handlers ------------------------------------------------------------------------------------------


def deduct(sandbox: Any, request: Any, match: Any) -> Answer:
    """POST /v3/ecommerce/combine-papay/transactions: charge a signed contract, synchronously."""
    sandbox.deductions.counted(_peek_number(request.body))
    data = validation.check_body(request.body, DEDUCT_FIELDS)
    if data["combine_mchid"] != sandbox.mchid or any(sub["mchid"] != sandbox.mchid for sub in data["sub_orders"]):
        raise ApiError(403, wechatpay.NO_AUTH, "combine_mchid 与商户号不匹配 (not this merchant)")
    contract = sandbox.contracts.by_contract_id(data["contract_id"])
    if contract is None or contract.get("contract_state") != wechatpay.SIGNED:
        raise ApiError(CONTRACT_NOT_EXIST_STATUS, wechatpay.CONTRACT_NOT_EXIST, "签约协议不存在或已解约")
    try:
        charge = sandbox.deductions.charge(data, openid=contract.get("openid", ""), at=wechatpay.format_rfc3339())
    except KeyError:
        # Each order is charged once [C]; what WeChat Pay answers to a re-sent number is not documented [I].
        raise ApiError(400, wechatpay.INVALID_REQUEST, "商户订单号重复 (received before)") from None
    return Answer.json(200, charge)


def query(sandbox: Any, request: Any, match: Any) -> Answer:
    """GET …/transactions/{combine_out_trade_no}: the charge as it stands."""
    return Answer.json(200, _known(sandbox, match))


def reverse(sandbox: Any, request: Any, match: Any) -> Answer:
    """POST …/transactions/{combine_out_trade_no}/reverse: cancel (撤销) the charge with every sub-order; 204."""
    charge = _known(sandbox, match)
    data = validation.check_body(request.body, REVERSE_FIELDS)
    if data["combine_appid"] != charge["combine_appid"] or not reverse_matches(charge, data["sub_orders"]):
        raise ApiError(400, wechatpay.PARAM_ERROR, "sub_orders 与原订单不一致 (name every sub-order of the charge)")
    sandbox.deductions.reverse(charge["combine_out_trade_no"])
    return Answer(204, b"")


def _known(sandbox: Any, match: Any) -> dict[str, Any]:
    charge = sandbox.deductions.get(unquote(match["combine_out_trade_no"]))
    if charge is None:
        raise ApiError(404, wechatpay.ORDER_NOT_EXIST, "订单不存在")
    return charge


def _peek_number(body: bytes) -> object:
    try:
        return json.loads(body).get("combine_out_trade_no")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None

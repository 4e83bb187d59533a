"""The profit-sharing endpoints (平台收付通 分账): share, query, finish, what is left, return (分账回退).

Each reads and changes ``state.sharing`` under its lock. The rules WeChat Pay documents are kept: only a paid
sub-order charged with ``profit_sharing`` can be shared, not after it is finished, not before its subsidy
arrived, at most 30 % of its amount; the same ``out_order_no`` (or ``out_return_no``) again is the same request
("同一分账单号多次请求等同一次"). ``receiver_name`` must be encrypted (RSA-OAEP) under the key the request
names in ``Wechatpay-Serial``: the sandbox opens it with that key's private half.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django_papay import crypto, wechatpay

from .. import validation
from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..validation import FieldRule

NOT_ENOUGH = "NOT_ENOUGH"

RECEIVER_FIELDS = (
    FieldRule("type", validation.one_of(*wechatpay.RECEIVER_TYPES)),
    FieldRule("receiver_account", validation.string(1, 64)),
    FieldRule("amount", validation.positive_integer),
    FieldRule("description", validation.string(1, 80)),
    FieldRule("receiver_name", validation.string(1, 1024), required=False),
)
SHARE_FIELDS = (
    FieldRule("appid", validation.string(1, 32), required=False),
    FieldRule("sub_mchid", validation.digits),
    FieldRule("transaction_id", validation.string(1, 32)),
    FieldRule("out_order_no", validation.string(1, 64)),
    FieldRule("receivers", validation.list_of(RECEIVER_FIELDS, 1, wechatpay.MAX_SHARE_RECEIVERS)),
    FieldRule("finish", validation.boolean),
)
FINISH_FIELDS = (
    FieldRule("sub_mchid", validation.digits),
    FieldRule("transaction_id", validation.string(1, 32)),
    FieldRule("out_order_no", validation.string(1, 64)),
    FieldRule("description", validation.string(1, 80)),
)
RETURN_FIELDS = (
    FieldRule("sub_mchid", validation.digits),
    FieldRule("order_id", validation.string(1, 64), required=False),
    FieldRule("out_order_no", validation.string(1, 64), required=False),
    FieldRule("out_return_no", validation.string(1, 64)),
    FieldRule("return_mchid", validation.digits),
    FieldRule("amount", validation.positive_integer),
    FieldRule("description", validation.string(1, 80)),
)


def share(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST /v3/ecommerce/profitsharing/orders: pay receivers out of a frozen sub-order."""
    data = validation.check_body(request.body, SHARE_FIELDS)
    book = state.sharing
    with book.lock:
        book.posts[data["out_order_no"]] += 1
        known = book.shares.get(data["out_order_no"])
        if known is not None:  # the same number again is the same request
            return Reply.json(200, _public(known))
        names = [_receiver_name(state, request, receiver) for receiver in data["receivers"]]
        if any(r["type"] == wechatpay.PERSONAL_OPENID for r in data["receivers"]) and "appid" not in data:
            raise ApiError(400, wechatpay.PARAM_ERROR, "appid 必填 (a PERSONAL_OPENID receiver needs appid)")
        order = _shareable(state, data["sub_mchid"], data["transaction_id"])
        total = sum(receiver["amount"] for receiver in data["receivers"])
        left = order["amount"] - order.get("refunded", 0)  # a refund before sharing reduces what may be shared
        if order["shared"] + total > left * wechatpay.MAX_SHARE_PERCENT // 100:
            raise ApiError(400, wechatpay.INVALID_REQUEST, "分账金额超出最大分账比例 (more than 30 % of the order)")
        if total > order["frozen"]:
            raise ApiError(400, NOT_ENOUGH, "分账金额不足 (more than is frozen)")
        order["frozen"] -= total
        order["shared"] += total
        done = not book.asynchronous
        receivers = []
        for receiver, name in zip(data["receivers"], names, strict=True):
            if receiver["type"] == wechatpay.MERCHANT_ID:
                book.accounts[receiver["receiver_account"]] += receiver["amount"]
            receivers.append(
                {
                    "type": receiver["type"],
                    "receiver_account": receiver["receiver_account"],
                    "amount": receiver["amount"],
                    "description": receiver["description"],
                    "result": wechatpay.RECEIVER_SUCCESS if done else wechatpay.RECEIVER_PENDING,
                    "detail_id": _id("3600"),
                    "finish_time": wechatpay.format_rfc3339() if done else "",
                    "receiver_name": name,  # the decrypted name, for tests; never answered
                }
            )
        if data["finish"]:
            book.unfreeze(order)
        record = {
            "sub_mchid": data["sub_mchid"],
            "transaction_id": data["transaction_id"],
            "out_order_no": data["out_order_no"],
            "order_id": _id("3008"),
            "status": wechatpay.SHARE_FINISHED if done else wechatpay.SHARE_PROCESSING,
            "receivers": receivers,
            "finish": data["finish"],
            "returned": {},
        }
        book.shares[data["out_order_no"]] = record
        answer = _public(record)
    book.changed()
    return Reply.json(200, answer)


def query(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/profitsharing/orders?sub_mchid=&transaction_id=&out_order_no=: PROCESSING becomes FINISHED."""
    parameters = _parameters(request, "sub_mchid", "transaction_id", "out_order_no")
    book = state.sharing
    with book.lock:
        known = book.shares.get(parameters["out_order_no"])
        if known is None or known["transaction_id"] != parameters["transaction_id"]:
            raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "记录不存在 (no such share)")
        if known["sub_mchid"] != parameters["sub_mchid"]:
            raise ApiError(400, wechatpay.PARAM_ERROR, "sub_mchid 与分账单不匹配")
    return Reply.json(200, _public(book.settle_processing(parameters["out_order_no"])))


def finish(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/profitsharing/finish-order: unfreeze what is left of the sub-order (完结分账)."""
    data = validation.check_body(request.body, FINISH_FIELDS)
    book = state.sharing
    with book.lock:
        book.posts[data["out_order_no"]] += 1
        known = book.shares.get(data["out_order_no"])
        if known is None:
            order = _shareable(state, data["sub_mchid"], data["transaction_id"])
            unfrozen = order["frozen"]
            book.unfreeze(order)
            known = book.shares[data["out_order_no"]] = {
                "sub_mchid": data["sub_mchid"],
                "transaction_id": data["transaction_id"],
                "out_order_no": data["out_order_no"],
                "order_id": _id("3008"),
                "status": wechatpay.SHARE_FINISHED,
                "receivers": [],
                "finish": True,
                "unfrozen": unfrozen,
                "returned": {},
            }
        answer = {key: known[key] for key in ("sub_mchid", "order_id", "out_order_no")}
    book.changed()
    return Reply.json(200, answer)


def unsplit_amount(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/profitsharing/orders/{transaction_id}/amounts: what is still frozen, to share or unfreeze."""
    transaction_id = unquote(match["transaction_id"])
    with state.sharing.lock:
        order = state.sharing.order(transaction_id)
        if order is None or not state.sharing.paid(transaction_id):
            raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "订单不存在")
        left = order["frozen"] if order["profit_sharing"] else 0
    return Reply.json(200, {"transaction_id": transaction_id, "unsplit_amount": left})


def return_share(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/profitsharing/returnorders: a merchant receiver gives shared money back (分账回退), at once."""
    data = validation.check_body(request.body, RETURN_FIELDS)
    book = state.sharing
    with book.lock:
        known = book.returns.get(data["out_return_no"])
        if known is not None:
            return Reply.json(200, known)
        shared = _share_for_return(book.shares, data)
        receiver_total = sum(
            r["amount"]
            for r in shared["receivers"]
            if r["type"] == wechatpay.MERCHANT_ID and r["receiver_account"] == data["return_mchid"]
        )
        already = shared["returned"].get(data["return_mchid"], 0)
        if data["amount"] > receiver_total - already:
            raise ApiError(400, wechatpay.INVALID_REQUEST, "回退金额超过分账金额 (more than this receiver was paid)")
        book.accounts[data["return_mchid"]] -= data["amount"]
        order = book.orders[shared["transaction_id"]]
        if order["finished"]:
            book.accounts[order["sub_mchid"]] += data["amount"]
        else:
            order["frozen"] += data["amount"]
        order["shared"] -= data["amount"]
        shared["returned"][data["return_mchid"]] = already + data["amount"]
        known = book.returns[data["out_return_no"]] = {
            "sub_mchid": data["sub_mchid"],
            "order_id": shared["order_id"],
            "out_order_no": shared["out_order_no"],
            "out_return_no": data["out_return_no"],
            "return_id": _id("3009"),
            "return_mchid": data["return_mchid"],
            "amount": data["amount"],
            "result": wechatpay.RETURN_SUCCESS,
            "finish_time": wechatpay.format_rfc3339(),
        }
    book.changed()
    return Reply.json(200, known)


def query_return(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/profitsharing/returnorders?sub_mchid=&out_order_no=&out_return_no=."""
    parameters = _parameters(request, "sub_mchid", "out_order_no", "out_return_no")
    with state.sharing.lock:
        known = state.sharing.returns.get(parameters["out_return_no"])
        if known is None or known["out_order_no"] != parameters["out_order_no"]:
            raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "记录不存在 (no such return)")
        return Reply.json(200, copy.deepcopy(known))


def _shareable(state: SandboxState, sub_mchid: str, transaction_id: str) -> dict[str, Any]:
    """The frozen sub-order a share or finish is about (call holding the book's lock)."""
    order = state.sharing.order(transaction_id)
    if order is None or order["sub_mchid"] != sub_mchid:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "订单不存在 (no such sub-order for this sub_mchid)")
    if not state.sharing.paid(transaction_id):
        raise ApiError(400, wechatpay.INVALID_REQUEST, "订单未支付成功")
    if not order["profit_sharing"]:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "非分账订单不支持分账")
    if order["finished"]:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "分账已完结 (sharing is finished)")
    if order["subsidy_amount"] and order["subsidy_paid"] < order["subsidy_amount"]:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "分账补贴还未到账，不能受理分账")
    return order


def _receiver_name(state: SandboxState, request: RecordedRequest, receiver: dict[str, Any]) -> str:
    """The decrypted ``receiver_name`` ("" without one), with the key ``Wechatpay-Serial`` names."""
    if "receiver_name" not in receiver:
        return ""
    serial = request.headers.get(wechatpay.SERIAL_HEADER, "")
    if not serial:
        raise ApiError(400, wechatpay.PARAM_ERROR, "Wechatpay-Serial 必填：receiver_name is encrypted")
    if serial == state.wechatpay_public_key_id:
        private_key = state.wechatpay_private_key
    else:
        issued = next((c for c in state.certificates.issued if c.serial_no == serial), None)
        if issued is None:
            raise ApiError(400, wechatpay.PARAM_ERROR, f"Wechatpay-Serial {serial} 不是有效的平台证书或公钥")
        private_key = issued.private_key
    try:
        return crypto.decrypt_sensitive(private_key, receiver["receiver_name"])
    except crypto.DecryptionError:
        raise ApiError(400, wechatpay.PARAM_ERROR, "receiver_name 解密失败 (not encrypted for that key)") from None


def _share_for_return(shares: dict[str, dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    if "out_order_no" in data:
        shared = shares.get(data["out_order_no"])
    else:
        shared = next((s for s in shares.values() if s["order_id"] == data.get("order_id")), None)
    if shared is None or shared["sub_mchid"] != data["sub_mchid"]:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "分账单不存在")
    if shared["status"] != wechatpay.SHARE_FINISHED:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "分账单未完成，不能回退 (only a FINISHED share)")
    return shared


def _public(share: dict[str, Any]) -> dict[str, Any]:
    """A share as WeChat Pay answers it: the decrypted names and the sandbox's own notes left out."""
    answer = {key: share[key] for key in ("sub_mchid", "transaction_id", "out_order_no", "order_id", "status")}
    answer["receivers"] = [
        {key: value for key, value in receiver.items() if key != "receiver_name" and value != ""}
        for receiver in share["receivers"]
    ]
    return copy.deepcopy(answer)


def _parameters(request: RecordedRequest, *names: str) -> dict[str, str]:
    query = parse_qs(urlsplit(request.path).query)
    missing = [name for name in names if not query.get(name)]
    if missing:
        raise ApiError(400, wechatpay.PARAM_ERROR, f"请求参数错误：{', '.join(missing)} is required")
    return {name: query[name][0] for name in names}


def _id(prefix: str) -> str:
    return prefix + wechatpay.nonce(24, "0123456789")

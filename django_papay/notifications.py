"""WeChat Pay's notification protocol: verify the signature over the raw body, then open the resource.

Protocol only — no models, no outbound calls: the keys are looked up among those we hold, and an
unknown serial is refused, never downloaded, so a stranger cannot make us call WeChat Pay.
The notify pipeline (``services.notifications``) decides what a verified notification does: it hands it to
its family's handler (contracts: ``services.notify_contracts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto, wechatpay
from .exceptions import InvalidNotification

# What json.loads can raise on bytes: deep nesting (64 KiB of "[" is far past the parser's limit) raises
# RecursionError, not ValueError.
NOT_JSON = (ValueError, UnicodeDecodeError, RecursionError)
# WeChat Pay's resources are flat objects; a deeper one is refused before anything walks it.
MAX_RESOURCE_DEPTH = 32
# WeChat Pay's identifiers are printable ASCII, and each must fit the column it is stored in.
_IDENTIFIER = re.compile(r"[\x21-\x7e]+")
TEXT_FIELDS = {"mchid": 32, "out_contract_code": 32, "appid": 32, "openid": 128}
MAX_PLAN_ID = 2**63 - 1  # a signed 64-bit integer, as stored
MAX_ATTACH = 255  # the pre-sign's attach is string(255)
# Free text (attach): anything but control characters (PostgreSQL cannot store a NUL) and surrogates.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class VerifiedNotification(NamedTuple):
    """A notification whose signature verified and whose resource opened with our APIv3 key.

    A NamedTuple rather than a frozen dataclass: as immutable, and several times cheaper to make.
    """

    id: str
    event_type: str
    envelope: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class ContractEvent:
    """The decrypted resource of a SIGN or TERMINATE notification, typed."""

    event_type: str
    mchid: str
    out_contract_code: str
    plan_id: int
    appid: str
    openid: str
    operate_time: datetime
    contract_expired_time: datetime | None = None
    contract_id: str = ""
    contract_termination_mode: str = ""
    attach: str = ""  # the pre-sign's attach, echoed back


@dataclass(frozen=True)
class RefundEvent:
    """The decrypted resource of a REFUND.SUCCESS, .ABNORMAL or .CLOSED notification, typed."""

    event_type: str
    sp_mchid: str
    sub_mchid: str
    out_refund_no: str
    refund_id: str
    refund_status: str  # as the resource says; the event type is what the pipeline goes by
    amount_refund: int
    amount_total: int | None = None
    out_trade_no: str = ""
    transaction_id: str = ""
    success_time: datetime | None = None
    user_received_account: str = ""


def peek(body: bytes) -> tuple[str, str]:
    """``(id, event_type)`` from an unverified body, for the log row only; ``("", "")`` when unparseable."""
    try:
        envelope = json.loads(body)
    except NOT_JSON:
        return "", ""
    if not isinstance(envelope, dict):
        return "", ""
    return _short_text(envelope.get("id")), _short_text(envelope.get("event_type"))


def _short_text(value: Any) -> str:
    return value[:64] if isinstance(value, str) else ""


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    apiv3_key: bytes,
    now: float | None = None,
) -> VerifiedNotification:
    """Check the headers and the signature over the raw body, then parse and decrypt; raise InvalidNotification."""
    # Each header read once (Django's request.headers looks names up case-insensitively); this path
    # runs for every delivery, so it is kept to plain lookups.
    serial = headers.get(wechatpay.SERIAL_HEADER)
    signature = headers.get(wechatpay.SIGNATURE_HEADER)
    timestamp = headers.get(wechatpay.TIMESTAMP_HEADER)
    nonce = headers.get(wechatpay.NONCE_HEADER)
    signature_type = headers.get(wechatpay.SIGNATURE_TYPE_HEADER)
    if not (serial and signature and timestamp and nonce and signature_type):
        missing = [name for name in wechatpay.SIGNED_HEADERS if not headers.get(name)]
        raise InvalidNotification("unsigned", f"missing header(s): {', '.join(missing)}", status=401)
    if signature_type != wechatpay.SIGNATURE_TYPE:
        raise InvalidNotification(
            "signature_type",
            f"unsupported {wechatpay.SIGNATURE_TYPE_HEADER}, expected {wechatpay.SIGNATURE_TYPE}",
            status=401,
        )
    try:
        crypto.verify_wechatpay_signature(
            public_keys, serial=serial, signature=signature, timestamp=timestamp, nonce=nonce, body=body, now=now
        )
    except crypto.SignatureError as exc:
        raise InvalidNotification(exc.reason, str(exc), status=401) from exc

    # Only a verified body is parsed and decrypted.
    try:
        envelope = json.loads(body)
    except NOT_JSON as exc:
        raise InvalidNotification("not_json", "the body is not JSON") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
        raise InvalidNotification("malformed", "the body is not a notification envelope with a resource")
    notification_id, event_type = envelope.get("id"), envelope.get("event_type")
    if not (isinstance(notification_id, str) and notification_id and isinstance(event_type, str) and event_type):
        raise InvalidNotification("malformed", "the envelope lacks id or event_type")
    return VerifiedNotification(notification_id, event_type, envelope, _open(envelope["resource"], apiv3_key))


def _open(resource: dict[str, Any], apiv3_key: bytes) -> dict[str, Any]:
    if resource.get("algorithm") != wechatpay.AEAD_ALGORITHM:
        raise InvalidNotification("malformed", f"the resource is not {wechatpay.AEAD_ALGORITHM}")
    nonce, ciphertext, associated_data = (
        resource.get("nonce"),
        resource.get("ciphertext"),
        resource.get("associated_data") or "",
    )
    if not (isinstance(nonce, str) and isinstance(ciphertext, str) and isinstance(associated_data, str)):
        raise InvalidNotification("malformed", "the resource's nonce, ciphertext or associated_data is not text")
    try:
        plaintext = crypto.decrypt(apiv3_key, nonce, ciphertext, associated_data)
        data = json.loads(plaintext)
    except crypto.DecryptionError as exc:
        raise InvalidNotification("decrypt", f"the resource does not open: {exc}") from exc
    except NOT_JSON as exc:
        raise InvalidNotification("malformed", "the decrypted resource is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidNotification("malformed", "the decrypted resource is not a JSON object")
    # Each object or list opens with a bracket byte (in UTF-8, -16 or -32 alike), so a text with no more
    # brackets than the limit cannot nest deeper; only one with more is walked. Saves the walk per delivery.
    if plaintext.count(b"{") + plaintext.count(b"[") > MAX_RESOURCE_DEPTH and nesting_depth(data) > MAX_RESOURCE_DEPTH:
        raise InvalidNotification("malformed", f"the decrypted resource is nested over {MAX_RESOURCE_DEPTH} deep")
    return data


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in decoded JSON ``value``, counted without recursion (the App's
    endpoints bound their bodies with it too)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def contract_event(notification: VerifiedNotification) -> ContractEvent:
    """Type the resource of a SIGN or TERMINATE notification; InvalidNotification if a field is missing or wrong."""
    data = notification.resource
    text = {name: _identifier(data, name, limit, required=True) for name, limit in TEXT_FIELDS.items()}
    plan_id = data.get("plan_id")
    if not isinstance(plan_id, int) or isinstance(plan_id, bool) or not 0 < plan_id <= MAX_PLAN_ID:
        raise InvalidNotification("malformed", "the resource's plan_id is not a positive 64-bit integer")
    operate_time = cast(datetime, _time(data, "operate_time", required=True))  # required: raised when missing
    return ContractEvent(
        event_type=notification.event_type,
        plan_id=plan_id,
        operate_time=operate_time,
        contract_expired_time=_time(data, "contract_expired_time", required=False),
        contract_id=_identifier(data, "contract_id", 64, required=False),
        contract_termination_mode=_identifier(data, "contract_termination_mode", 64, required=False),
        attach=_free_text(data, "attach", MAX_ATTACH),
        **text,
    )


def refund_event(notification: VerifiedNotification) -> RefundEvent:
    """Type the resource of a REFUND.* notification; InvalidNotification if a field is missing or wrong."""
    data = notification.resource
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise InvalidNotification("malformed", "the resource's amount is not an object")
    refund, total = amount.get("refund"), amount.get("total")
    if not _fen(refund) or (total is not None and not _fen(total)):
        raise InvalidNotification("malformed", "the resource's amount.refund or amount.total is not a positive integer")
    return RefundEvent(
        event_type=notification.event_type,
        sp_mchid=_identifier(data, "sp_mchid", 32, required=True),
        sub_mchid=_identifier(data, "sub_mchid", 32, required=True),
        out_refund_no=_identifier(data, "out_refund_no", wechatpay.MAX_REFUND_NO, required=True),
        refund_id=_identifier(data, "refund_id", 64, required=True),
        refund_status=_identifier(data, "refund_status", 32, required=False),
        amount_refund=cast(int, refund),  # checked above
        amount_total=total,
        out_trade_no=_identifier(data, "out_trade_no", 32, required=False),
        transaction_id=_identifier(data, "transaction_id", 64, required=False),
        success_time=_time(data, "success_time", required=False),
        user_received_account=_free_text(data, "user_received_account", 128),
    )


def _fen(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PLAN_ID


def _time(data: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = data.get(name)
    if value in (None, "") and not required:
        return None
    parsed = wechatpay.parse_rfc3339(value)  # None also for month 13, or a time before UTC's year 1
    if parsed is None:
        raise InvalidNotification("malformed", f"the resource's {name} is not an RFC 3339 time")
    return parsed


def _free_text(data: dict[str, Any], name: str, limit: int) -> str:
    """An optional free-text field (any language): at most ``limit`` characters, no control characters."""
    value = data.get(name)
    if value in (None, ""):
        return ""
    if not (isinstance(value, str) and len(value) <= limit and not _NOT_TEXT.search(value)):
        raise InvalidNotification("malformed", f"the resource's {name} is not text of at most {limit} characters")
    return value


def _identifier(data: dict[str, Any], name: str, limit: int, *, required: bool) -> str:
    """A text field: printable ASCII, at most ``limit`` characters; an optional one may be missing or empty."""
    value = data.get(name)
    if not required and value in (None, ""):
        return ""
    if not (isinstance(value, str) and len(value) <= limit and _IDENTIFIER.fullmatch(value)):
        raise InvalidNotification("malformed", f"the resource's {name} is not 1 to {limit} printable ASCII characters")
    return value

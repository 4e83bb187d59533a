"""WeChat Pay's notification protocol: verify the signature over the raw body, then open the resource.

Protocol only — no models, no outbound calls: the keys are looked up among those we hold, and an
unknown serial is refused, never downloaded, so a stranger cannot make us call WeChat Pay.
``services.notifications`` decides what a verified notification does to a contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils.dateparse import parse_datetime

from . import crypto
from .exceptions import InvalidNotification

SIGN = "ECOMMERCE_ENTRUST.SIGN"
TERMINATE = "ECOMMERCE_ENTRUST.TERMINATE"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
REQUIRED_HEADERS = (
    "Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature-Type",
)


@dataclass(frozen=True)
class VerifiedNotification:
    """A notification whose signature verified and whose resource opened with our APIv3 key."""

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


def peek(body: bytes) -> tuple[str, str]:
    """``(id, event_type)`` from an unverified body, for the log row only; ``("", "")`` when unparseable."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
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
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise InvalidNotification("unsigned", f"missing header(s): {', '.join(missing)}", status=401)
    if headers["Wechatpay-Signature-Type"] != SIGNATURE_TYPE:
        raise InvalidNotification("signature_type", f"unsupported Wechatpay-Signature-Type, expected {SIGNATURE_TYPE}",
                                  status=401)
    try:
        crypto.verify_wechatpay_signature(
            public_keys,
            serial=headers["Wechatpay-Serial"],
            signature=headers["Wechatpay-Signature"],
            timestamp=headers["Wechatpay-Timestamp"],
            nonce=headers["Wechatpay-Nonce"],
            body=body,
            now=now,
        )
    except crypto.SignatureError as exc:
        raise InvalidNotification(exc.reason, str(exc), status=401) from exc

    # Only a verified body is parsed and decrypted.
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidNotification("not_json", "the body is not JSON") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
        raise InvalidNotification("malformed", "the body is not a notification envelope with a resource")
    notification_id, event_type = envelope.get("id"), envelope.get("event_type")
    if not (isinstance(notification_id, str) and notification_id and isinstance(event_type, str) and event_type):
        raise InvalidNotification("malformed", "the envelope lacks id or event_type")
    return VerifiedNotification(notification_id, event_type, envelope, _open(envelope["resource"], apiv3_key))


def _open(resource: dict[str, Any], apiv3_key: bytes) -> dict[str, Any]:
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise InvalidNotification("malformed", "the resource is not AEAD_AES_256_GCM")
    fields = (resource.get("nonce"), resource.get("ciphertext"), resource.get("associated_data") or "")
    if not all(isinstance(value, str) for value in fields):
        raise InvalidNotification("malformed", "the resource's nonce, ciphertext or associated_data is not text")
    try:
        plaintext = crypto.decrypt(apiv3_key, *fields)
        data = json.loads(plaintext)
    except crypto.DecryptionError as exc:
        raise InvalidNotification("decrypt", f"the resource does not open: {exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidNotification("malformed", "the decrypted resource is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidNotification("malformed", "the decrypted resource is not a JSON object")
    return data


def contract_event(notification: VerifiedNotification) -> ContractEvent:
    """Type the resource of a SIGN or TERMINATE notification; InvalidNotification if a field is missing or wrong."""
    data = notification.resource
    text = {name: data.get(name) for name in ("mchid", "out_contract_code", "appid", "openid")}
    for name, value in text.items():
        if not isinstance(value, str) or not value or len(value) > 128:
            raise InvalidNotification("malformed", f"the resource's {name} is missing or not text")
    plan_id = data.get("plan_id")
    if not isinstance(plan_id, int) or isinstance(plan_id, bool) or plan_id <= 0:
        raise InvalidNotification("malformed", "the resource's plan_id is not a positive integer")
    operate_time = _time(data, "operate_time", required=True)
    return ContractEvent(
        event_type=notification.event_type,
        plan_id=plan_id,
        operate_time=operate_time,
        contract_expired_time=_time(data, "contract_expired_time", required=False),
        contract_id=_optional_text(data, "contract_id"),
        contract_termination_mode=_optional_text(data, "contract_termination_mode"),
        **text,
    )


def _time(data: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = data.get(name)
    if value in (None, "") and not required:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidNotification("malformed", f"the resource's {name} is not an RFC 3339 time")
    return parsed


def _optional_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidNotification("malformed", f"the resource's {name} is not text")
    return value

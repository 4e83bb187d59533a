"""Notifications WeChat Pay sends the merchant, as it builds them: a sealed resource in a JSON envelope, signed.

Building only, nothing is sent (``delivery`` sends, ``user`` builds them from what the state knows):

- the resource (plain JSON) is sealed with AEAD_AES_256_GCM under the APIv3 key, AAD ``entrust``;
- the envelope is compact UTF-8 JSON with Chinese left unescaped, exactly the bytes that are sent;
- the headers sign ``TIMESTAMP\\nNONCE\\nBODY\\n`` with WeChat Pay's private key (``crypto.signature_headers``).

Every step takes an override so tests can build the broken notifications a receiver must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

from .replies import new_request_id

SUMMARIES = {
    wechatpay.SIGN_EVENT: "签约成功",
    wechatpay.TERMINATE_EVENT: "解约成功",
    wechatpay.REFUND_SUCCESS_EVENT: "退款成功",
    wechatpay.REFUND_ABNORMAL_EVENT: "退款异常",
    wechatpay.REFUND_CLOSED_EVENT: "退款关闭",
}
DEFAULT_SUMMARY = "通知"
RESOURCE_TYPE = "encrypt-resource"
ORIGINAL_TYPE = "entrust"
CONTENT_TYPE = "application/json"
USER_AGENT = "Mozilla/4.0"  # WeChat Pay's notifier sends a fixed, old-fashioned User-Agent

CONTRACT_YEARS = 5  # how long a fake contract lasts unless told otherwise
FAKE_OPENID_PREFIX = "oUpF8u"  # openids are 28 characters of base64url; this keeps that shape


@dataclass(frozen=True)
class OutgoingNotification:
    """One notification from WeChat Pay to the merchant, ready to POST: ``body`` and ``headers`` are exactly
    what goes on the wire.

    ``resource`` is the plaintext inside ``envelope["resource"]``; ``envelope`` is None when a ``body``
    override is not a JSON object. ``private_key`` (never shown) is the key that signs redeliveries.
    """

    event_type: str
    resource: dict[str, Any]
    envelope: dict[str, Any] | None
    body: bytes
    headers: dict[str, str]
    url: str
    private_key: rsa.RSAPrivateKey | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The envelope's ``id``, the notification id a receiver deduplicates on ("" without one)."""
        return str(self.envelope.get("id", "")) if self.envelope is not None else ""

    def signed_again(
        self,
        *,
        timestamp: int | str | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
        signature: str | None = None,
    ) -> OutgoingNotification:
        """The same body, signed now with a fresh timestamp and nonce, as WeChat Pay signs each retry.

        The key and serial it was built with are kept; a ``timestamp`` or ``signature`` override is
        not (it described one delivery), so pass it again to repeat it.
        """
        key = private_key or self.private_key
        if key is None:
            raise ValueError("this notification was built without a signing key; pass private_key=")
        headers = signed_headers(
            self.body,
            private_key=key,
            serial=self.headers[wechatpay.SERIAL_HEADER] if serial is None else serial,
            timestamp=timestamp,
            signature=signature,
        )
        return replace(self, headers=headers, private_key=key)


def build(
    event_type: str,
    resource: dict[str, Any],
    *,
    url: str,
    apiv3_key: str | bytes,
    private_key: rsa.RSAPrivateKey,
    serial: str,
    notification_id: str | None = None,
    timestamp: int | str | None = None,
    signature: str | None = None,
    body: bytes | None = None,
    associated_data: str | None = wechatpay.ENTRUST_ASSOCIATED_DATA,
    original_type: str = ORIGINAL_TYPE,
) -> OutgoingNotification:
    """Seal ``resource``, wrap it in an envelope and sign the body.

    ``body`` replaces the envelope's bytes (still signed, unless ``signature`` is given too);
    ``associated_data=None`` leaves the field out of the envelope and seals without AAD.
    """
    envelope: dict[str, Any] | None = {
        "id": notification_id if notification_id is not None else str(uuid.uuid4()),
        "create_time": wechatpay.format_rfc3339(),
        "resource_type": RESOURCE_TYPE,
        "event_type": event_type,
        "summary": SUMMARIES.get(event_type, DEFAULT_SUMMARY),
        "resource": seal(resource, apiv3_key, associated_data, original_type),
    }
    if body is None:
        body = compact_json(envelope)
    else:
        envelope = _json_object(body)
    headers = signed_headers(body, private_key=private_key, serial=serial, timestamp=timestamp, signature=signature)
    return OutgoingNotification(event_type, dict(resource), envelope, body, headers, url, private_key)


def seal(
    resource: dict[str, Any], apiv3_key: str | bytes, associated_data: str | None, original_type: str = ORIGINAL_TYPE
) -> dict[str, str]:
    """The envelope's ``resource``: the plaintext JSON encrypted with a fresh 12-character nonce."""
    nonce = wechatpay.nonce(crypto.GCM_NONCE_BYTES)
    sealed = {
        "original_type": original_type,
        "algorithm": wechatpay.AEAD_ALGORITHM,
        "ciphertext": crypto.encrypt(apiv3_key, nonce, compact_json(resource), associated_data),
    }
    if associated_data is not None:
        sealed["associated_data"] = associated_data
    sealed["nonce"] = nonce
    return sealed


def signed_headers(
    body: bytes,
    *,
    private_key: rsa.RSAPrivateKey,
    serial: str,
    timestamp: int | str | None = None,
    signature: str | None = None,
) -> dict[str, str]:
    """The headers of one delivery; ``signature`` replaces the real one (e.g. a SIGNTEST probe)."""
    signed = crypto.signature_headers(
        body, private_key=private_key, serial=serial, timestamp=timestamp, signature=signature
    )
    return {
        **signed,
        "Content-Type": CONTENT_TYPE,
        wechatpay.REQUEST_ID_HEADER: new_request_id(),
        "User-Agent": USER_AGENT,
    }


def compact_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# --- resource values ------------------------------------------------------------------------


def rfc3339(moment: datetime | str | None = None) -> str:
    """``moment`` (now by default) as WeChat Pay writes times; a string is taken as already written."""
    return moment if isinstance(moment, str) else wechatpay.format_rfc3339(moment)


def years_after(moment: datetime | str, years: int = CONTRACT_YEARS) -> str:
    """``moment`` plus whole calendar years (29 February becomes 28 February), in RFC 3339."""
    if isinstance(moment, str):
        parsed = wechatpay.parse_rfc3339(moment)
        if parsed is None:
            raise ValueError(f"{moment!r} is not an RFC 3339 time; pass contract_expired_time= too")
        moment = parsed
    try:
        later = moment.replace(year=moment.year + years)
    except ValueError:
        later = moment.replace(year=moment.year + years, day=28)
    return wechatpay.format_rfc3339(later)


def fake_openid(out_contract_code: str) -> str:
    """A stable openid for the user who signs ``out_contract_code`` (28 characters, like real ones)."""
    digest = hashlib.sha256(f"openid:{out_contract_code}".encode()).digest()
    return FAKE_OPENID_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii")[:22]


def fake_contract_id(mchid: str, out_contract_code: str) -> str:
    """A stable 32-character WeChat Pay contract id for the merchant's ``out_contract_code``."""
    return hashlib.sha256(f"contract:{mchid}:{out_contract_code}".encode()).hexdigest()[:32].upper()

"""What a handler gives back: a ``Reply`` (status, raw body, content type), or an ``ApiError`` raised to refuse.

Both are WeChat Pay's shapes: UTF-8 JSON with Chinese left unescaped, errors as ``{"code", "message",
"detail"}``. ``signed_headers`` is how every reply is signed before it goes out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One HTTP reply before it is signed: status, raw body bytes and content type.

    ``signed`` False: a file download, which WeChat Pay sends with no ``Wechatpay-Signature`` [C].
    """

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    signed: bool = True

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        # WeChat Pay answers UTF-8 JSON with Chinese left unescaped; clients must verify the raw bytes.
        return cls(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    @classmethod
    def error(cls, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> Reply:
        payload: dict[str, Any] = {"code": code, "message": message}
        if detail is not None:
            payload["detail"] = detail
        return cls.json(status, payload)


class ApiError(Exception):
    """A request WeChat Pay refuses; the route table turns it into a signed error reply."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def reply(self) -> Reply:
        return Reply.error(self.status, self.code, self.message, self.detail)


def new_request_id() -> str:
    """A fresh ``Request-ID``, the id WeChat Pay support asks for when something went wrong."""
    return wechatpay.nonce(32, wechatpay.UPPER_HEX)


def signed_headers(
    body: bytes, private_key: rsa.RSAPrivateKey, serial: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers WeChat Pay signs every answer with: ``Wechatpay-*`` (signature type included) and ``Request-ID``."""
    headers = crypto.signature_headers(body, private_key=private_key, serial=serial, timestamp=timestamp)
    return {**headers, wechatpay.REQUEST_ID_HEADER: new_request_id()}

"""What the sandbox sends back: answers, WeChat Pay's error shape, and the signed response headers."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class Answer:
    """One HTTP answer before it is signed: status, raw body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Answer:
        # WeChat Pay answers UTF-8 JSON with Chinese left unescaped; clients must verify the raw bytes.
        return cls(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    @classmethod
    def error(cls, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> Answer:
        payload: dict[str, Any] = {"code": code, "message": message}
        if detail is not None:
            payload["detail"] = detail
        return cls.json(status, payload)


class ApiError(Exception):
    """A request WeChat Pay refuses; the sandbox turns it into a signed error answer."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def answer(self) -> Answer:
        return Answer.error(self.status, self.code, self.message, self.detail)


def new_request_id() -> str:
    """A fresh ``Request-ID``, the id WeChat Pay support asks for when something went wrong."""
    return secrets.token_hex(16).upper()


def signed_headers(
    body: bytes,
    *,
    private_key: rsa.RSAPrivateKey,
    key_id: str,
    timestamp: int | None = None,
    signed_body: bytes | None = None,
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers of an answer: serial, timestamp, nonce and the signature of
    ``TIMESTAMP\\nNONCE\\nBODY\\n``.

    ``signed_body`` lets a fault sign something other than what is sent, so the signature cannot verify.
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = wechatpay.nonce()
    message = crypto.response_message(timestamp, nonce, body if signed_body is None else signed_body)
    return {
        "Wechatpay-Serial": key_id,
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": crypto.sign(private_key, message),
        "Request-ID": new_request_id(),
    }

"""One WeChat Pay APIv3 client: build, sign, send, verify, and raise typed errors.

HTTP only — no models. Every request is signed with the merchant's API private key; every
successful answer must carry a valid WeChat Pay signature before its body is trusted.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from . import __version__, conf, crypto
from .exceptions import InvalidResponseError, WeChatPayError, WeChatPayNetworkError

logger = logging.getLogger("django_papay.client")

USER_AGENT = (
    f"django-papay/{__version__} (Python/{platform.python_version()}; requests/{requests.__version__})"
)


@dataclass(frozen=True)
class Answer:
    """A verified 2xx answer from WeChat Pay."""

    status: int
    data: dict[str, Any]
    request_id: str
    headers: dict[str, str] = field(repr=False, default_factory=dict)


class WeChatPayClient:
    """Sends signed APIv3 requests over one reused ``requests.Session``."""

    def __init__(self, config: conf.ClientSettings, session: requests.Session | None = None) -> None:
        self.config = config
        self.public_keys = dict(config.wechatpay_public_keys)
        self.session = session or requests.Session()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, payload: dict[str, Any]) -> Answer:
        return self.request("POST", path, payload)

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Answer:
        """Send ``method path`` (path with any ``?query``, no host) and return the verified answer.

        Raises WeChatPayNetworkError when no answer arrives, InvalidResponseError when the answer
        cannot be trusted or read, and WeChatPayError for WeChat Pay's own error answers.
        """
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = self._headers(method, path, body)
        started = time.monotonic()
        try:
            response = self.session.request(
                method, self.config.base_url + path, data=body or None, headers=headers, timeout=self.config.timeout
            )
            raw = response.content  # read the whole body here, so a truncated one fails as a network error
        except requests.Timeout as exc:
            logger.warning("%s %s -> timed out after %.1f s", method, path, time.monotonic() - started)
            raise WeChatPayNetworkError(f"WeChat Pay did not answer in time ({_short(exc)})", code="TIMEOUT") from exc
        except requests.RequestException as exc:
            logger.warning("%s %s -> no answer (%s)", method, path, type(exc).__name__)
            raise WeChatPayNetworkError(f"could not reach WeChat Pay ({_short(exc)})") from exc

        request_id = response.headers.get("Request-ID", "")
        logger.info(
            "%s %s -> %s (Request-ID %s, %d ms)",
            method, path, response.status_code, request_id or "-", (time.monotonic() - started) * 1000,
        )
        if 200 <= response.status_code < 300:
            self._verify(response, raw, request_id)
            return Answer(response.status_code, _json_object(response, raw, request_id), request_id,
                          dict(response.headers))
        raise self._error(response, raw, request_id)

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = {
            "Authorization": crypto.authorization(
                mchid=self.config.mchid,
                serial_no=self.config.merchant_serial_no,
                private_key=self.config.merchant_private_key,
                method=method,
                url=path,
                body=body,
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            # Asks WeChat Pay to sign its answers with the key we trust (its public key id).
            "Wechatpay-Serial": self.config.wechatpay_serial,
        }
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    def _verify(self, response: requests.Response, raw: bytes, request_id: str) -> None:
        try:
            crypto.verify_wechatpay_signature(
                self.public_keys,
                serial=response.headers.get("Wechatpay-Serial", ""),
                signature=response.headers.get("Wechatpay-Signature", ""),
                timestamp=response.headers.get("Wechatpay-Timestamp", ""),
                nonce=response.headers.get("Wechatpay-Nonce", ""),
                body=raw,
            )
        except crypto.SignatureError as exc:
            logger.warning("answer refused (Request-ID %s): %s", request_id or "-", exc)
            raise InvalidResponseError(
                f"WeChat Pay's answer was refused: {exc}",
                code="INVALID_RESPONSE_SIGNATURE",
                status=response.status_code,
                request_id=request_id,
            ) from exc

    def _error(self, response: requests.Response, raw: bytes, request_id: str) -> WeChatPayError:
        # Like WeChat Pay's own SDKs we accept unsigned error answers (gateways answer some errors
        # unsigned), but a signed one must verify: a forged error must not mark a contract failed.
        if response.headers.get("Wechatpay-Signature"):
            self._verify(response, raw, request_id)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        return WeChatPayError(
            str(data.get("message") or response.reason or "error"),
            code=str(data.get("code") or f"HTTP_{response.status_code}"),
            status=response.status_code,
            detail=data.get("detail"),
            request_id=request_id,
        )


def _json_object(response: requests.Response, raw: bytes, request_id: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidResponseError(
            "WeChat Pay's answer is not a JSON object", code="INVALID_RESPONSE_BODY",
            status=response.status_code, request_id=request_id,
        )
    return data


def _short(exc: Exception) -> str:
    """The exception's class name: urllib3's messages repeat the URL and are long."""
    return type(exc).__name__


_clients: dict[tuple, WeChatPayClient] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 8  # settings rarely change outside tests; don't keep a pool per past configuration


def get_client() -> WeChatPayClient:
    """The client for the current settings; one per configuration, so its connections are reused."""
    config = conf.client_settings()
    with _clients_lock:
        client = _clients.get(config.identity())
        if client is None:
            if len(_clients) >= _MAX_CLIENTS:
                for stale in _clients.values():
                    stale.session.close()
                _clients.clear()
            client = _clients[config.identity()] = WeChatPayClient(config)
        return client

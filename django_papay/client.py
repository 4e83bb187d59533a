"""One WeChat Pay APIv3 client: build, sign, send, verify, and raise typed errors.

HTTP only — no models. Every request is signed with the merchant's API private key; every
successful answer must carry a valid WeChat Pay signature before its body is trusted. The key an
answer names in ``Wechatpay-Serial`` comes from the ``KeyStore`` the client is built with: the
configured WeChat Pay public key (``ConfiguredKeys``), or one that also knows the platform certificates
kept in the database (``services.certificates.StoredKeys``, chosen by ``services.connections.get_client``).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from urllib3.exceptions import NewConnectionError

from . import __version__, conf, crypto, wechatpay
from .exceptions import InvalidResponseError, WeChatPayError, WeChatPayNetworkError

logger = logging.getLogger("django_papay.client")

USER_AGENT = f"django-papay/{__version__} (Python/{platform.python_version()}; requests/{requests.__version__})"


@dataclass(frozen=True)
class Answer:
    """A verified 2xx answer from WeChat Pay."""

    status: int
    data: dict[str, Any]
    request_id: str
    headers: dict[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class RawAnswer:
    """A 2xx answer as it arrived: signature not yet checked, body not yet trusted."""

    status: int
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    request_id: str
    url: str = ""  # where it came from: the main host or the backup


class KeyStore:
    """Where the client finds the WeChat Pay key an answer names in ``Wechatpay-Serial``."""

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        """The key WeChat Pay signs with under ``serial``; None when unknown."""
        raise NotImplementedError

    def on_unknown_serial(self, serial: str) -> bool:
        """An answer from WeChat Pay named a key we do not have (say, a rotated certificate).

        Called at most once per answer, and only for answers to our own requests — never for
        notifications. Return True when ``key_for`` may now know it. By default there is nothing to fetch.
        """
        return False

    def snapshot(self) -> KeyStore:
        """The keys known now, held in memory: a store other threads may use without touching any database."""
        raise NotImplementedError

    def serials(self) -> list[str]:
        """The serials this store knows now, for an error that must say which keys the site trusts."""
        snapshot = self.snapshot()
        return [] if snapshot is self else snapshot.serials()


class ConfiguredKeys(KeyStore):
    """Keys held in memory: the WeChat Pay public key from settings, or a snapshot of another store."""

    def __init__(self, keys: Mapping[str, rsa.RSAPublicKey]) -> None:
        self.keys = dict(keys)

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        return self.keys.get(serial)

    def snapshot(self) -> KeyStore:
        return self

    def serials(self) -> list[str]:
        return sorted(self.keys)


class WeChatPayClient:
    """Sends signed APIv3 requests over one reused ``requests.Session``."""

    def __init__(
        self, config: conf.ClientSettings, session: requests.Session | None = None, keys: KeyStore | None = None
    ) -> None:
        self.config = config
        self.keys = keys or ConfiguredKeys(dict(config.wechatpay_public_keys))
        self.session = session or requests.Session()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, payload: dict[str, Any]) -> Answer:
        return self.request("POST", path, payload)

    def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        timeout: tuple[float, float] | None = None,
    ) -> Answer:
        """Send ``method path`` (path with any ``?query``, no host) and return the verified answer.

        ``timeout`` (connect, read) replaces ``PAPAY["TIMEOUT"]`` for this call.

        Raises WeChatPayNetworkError when no answer arrives, InvalidResponseError when the answer
        cannot be trusted or read, and WeChatPayError for WeChat Pay's own error answers.
        """
        return self.accept(self.send(method, path, payload, timeout=timeout))

    def accept(self, raw: RawAnswer) -> Answer:
        """Verify a 2xx answer from ``send`` with the client's key store and read its JSON object."""
        self.check_signature(raw)
        return Answer(raw.status, _json_object(raw), raw.request_id, dict(raw.headers))

    def send(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        keys: KeyStore | None = None,
        timeout: tuple[float, float] | None = None,
        wechatpay_serial: str | None = None,
    ) -> RawAnswer:
        """Sign and send; return a 2xx answer unverified, raise a typed error for anything else.

        For callers that verify later or otherwise: the certificate download, whose answer may be signed
        by a certificate it carries (``check_signature`` next), and the bulk runs' sending threads (``accept``
        next, in the calling thread). A signed error answer is verified with ``keys`` (default: the
        client's key store). ``wechatpay_serial`` names, in ``Wechatpay-Serial``, the WeChat Pay key that a
        sensitive field of ``payload`` is encrypted under (``crypto.encrypt_sensitive``).
        """
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = self._headers(method, path, body, wechatpay_serial)
        hosts = [self.config.base_url]
        if self.config.backup_base_url:
            hosts.append(self.config.backup_base_url)
        started = time.monotonic()
        for attempt, host in enumerate(hosts):
            try:
                # PAPAY["CA_BUNDLE"] is passed per request: on the session, requests would let a
                # REQUESTS_CA_BUNDLE environment variable override it. None keeps the default trust.
                response = self.session.request(
                    method,
                    host + path,
                    data=body or None,
                    headers=headers,
                    timeout=timeout or self.config.timeout,
                    verify=self.config.ca_bundle,
                )
                raw = response.content  # read the whole body here, so a truncated one fails as a network error
                break
            except requests.RequestException as exc:
                if attempt + 1 < len(hosts) and _never_delivered(exc):
                    logger.warning(
                        "%s %s -> %s unreachable (%s); trying the backup host", method, path, host, type(exc).__name__
                    )
                    continue
                raise _network_error(method, host, path, exc, time.monotonic() - started) from exc

        request_id = response.headers.get(wechatpay.REQUEST_ID_HEADER, "")
        logger.info(
            "%s %s -> %s (Request-ID %s, %d ms)",
            method,
            path,
            response.status_code,
            request_id or "-",
            (time.monotonic() - started) * 1000,
        )
        answer = RawAnswer(response.status_code, raw, response.headers, request_id, host + path)
        if 200 <= response.status_code < 300:
            return answer
        raise self._error(answer, response.reason, keys or self.keys)

    def download(self, url: str, into: IO[bytes], *, chunk_size: int = 1 << 16) -> int:
        """GET a bill's ``download_url``, signed like any request, and write the body to ``into``; the bytes written.

        The one answer whose signature is not checked: WeChat Pay sends a file download without
        ``Wechatpay-Signature`` [C]. The caller proves the file instead (a bill: the SHA1 its signed
        ``GET /v3/bill/tradebill`` answer named). So the URL must be on one of the client's own hosts: the
        request is signed, and an answer we cannot verify is taken from nowhere else. Streamed, so a large
        bill is never held in memory; no backup host (the URL names its host, and it lives minutes).
        Error answers raise as for ``send``; a cut body raises WeChatPayNetworkError.
        """
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in {self.config.base_url, self.config.backup_base_url} or not parts.path.startswith("/"):
            raise InvalidResponseError(
                "the download_url is not on WeChat Pay's API host", code="INVALID_DOWNLOAD_URL", status=None
            )
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = self._headers("GET", path, b"")
        headers["Accept"] = "*/*"
        started = time.monotonic()
        try:
            with self.session.get(
                url, headers=headers, timeout=self.config.timeout, verify=self.config.ca_bundle, stream=True
            ) as response:
                request_id = response.headers.get(wechatpay.REQUEST_ID_HEADER, "")
                if not 200 <= response.status_code < 300:
                    raw = RawAnswer(response.status_code, response.content, response.headers, request_id, url)
                    raise self._error(raw, response.reason, self.keys)
                written = 0
                for chunk in response.iter_content(chunk_size):
                    into.write(chunk)
                    written += len(chunk)
        except requests.RequestException as exc:
            raise _network_error(
                "GET", f"{parts.scheme}://{parts.netloc}", parts.path, exc, time.monotonic() - started
            ) from exc
        logger.info(
            "GET %s -> %s (Request-ID %s, %d bytes, %d ms)",
            parts.path,
            response.status_code,
            request_id or "-",
            written,
            (time.monotonic() - started) * 1000,
        )
        return written

    def check_signature(self, answer: RawAnswer, keys: KeyStore | None = None) -> None:
        """Raise InvalidResponseError unless ``answer`` carries a valid signature by a key in ``keys``."""
        keys = keys or self.keys
        headers = answer.headers
        serial = headers.get(wechatpay.SERIAL_HEADER, "")
        signature = headers.get(wechatpay.SIGNATURE_HEADER, "")
        timestamp = headers.get(wechatpay.TIMESTAMP_HEADER, "")
        key = keys.key_for(serial) if serial else None
        # Only a fresh, real signature may make the store fetch keys: a stale or probe answer never will.
        if (
            key is None
            and serial
            and signature
            and not signature.startswith(wechatpay.SIGNTEST_PREFIX)
            and crypto.timestamp_is_fresh(timestamp)
            and keys.on_unknown_serial(serial)
        ):
            key = keys.key_for(serial)
        try:
            crypto.verify_wechatpay_signature(
                {serial: key} if key is not None else {},
                serial=serial,
                signature=signature,
                timestamp=timestamp,
                nonce=headers.get(wechatpay.NONCE_HEADER, ""),
                body=answer.body,
            )
        except crypto.SignatureError as exc:
            logger.warning("answer refused (Request-ID %s): %s", answer.request_id or "-", exc)
            hint = _unknown_serial_hint(keys) if exc.reason == "unknown_serial" else ""
            raise InvalidResponseError(
                f"WeChat Pay's answer was refused: {exc}{hint}",
                code="INVALID_RESPONSE_SIGNATURE",
                status=answer.status,
                request_id=answer.request_id,
            ) from exc

    def _headers(self, method: str, path: str, body: bytes, wechatpay_serial: str | None = None) -> dict[str, str]:
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
        }
        if wechatpay_serial:
            # APIv3's rule for sensitive fields: the request names the key they are encrypted under.
            headers[wechatpay.SERIAL_HEADER] = wechatpay_serial
        elif self.config.wechatpay_serial:
            # Asks WeChat Pay to sign its answers with the key we trust (its public key id).
            headers[wechatpay.SERIAL_HEADER] = self.config.wechatpay_serial
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    def _error(self, answer: RawAnswer, reason: str, keys: KeyStore) -> WeChatPayError:
        # Like WeChat Pay's own SDKs we accept unsigned error answers (gateways answer some errors
        # unsigned), but a signed one must verify: a forged error must not mark a contract failed.
        verified = bool(answer.headers.get(wechatpay.SIGNATURE_HEADER))
        if verified:
            self.check_signature(answer, keys)
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        return WeChatPayError(
            str(data.get("message") or reason or "error"),
            code=str(data.get("code") or f"HTTP_{answer.status}"),
            status=answer.status,
            detail=data.get("detail"),
            request_id=answer.request_id,
            verified=verified,
        )


def _unknown_serial_hint(keys: KeyStore) -> str:
    """What a refusal for an unknown ``Wechatpay-Serial`` adds: the keys this site trusts, and the usual cause."""
    try:
        known = keys.serials()
    except Exception:  # the hint must never hide the refusal itself
        known = []
    trusted = ", ".join(repr(serial) for serial in known) or "none"
    return (
        f"; this site trusts {trusted} (WECHATPAY_PUBLIC_KEY_ID, or the stored platform certificates). "
        "The answer is signed with keys your settings do not have: for a sandbox, start it with the "
        "--keys-dir your PAPAY settings read (an absolute path), or point the settings at its folder"
    )


def _network_error(
    method: str, host: str, path: str, exc: requests.RequestException, seconds: float
) -> WeChatPayNetworkError:
    if isinstance(exc, requests.Timeout):
        logger.warning("%s %s%s -> timed out after %.1f s", method, host, path, seconds)
        return WeChatPayNetworkError(
            f"WeChat Pay did not answer in time at {host} ({_short(exc)}, {seconds:.1f} s)", code="TIMEOUT"
        )
    logger.warning("%s %s%s -> no answer (%s)", method, host, path, type(exc).__name__)
    if _never_delivered(exc):
        return WeChatPayNetworkError(
            f"could not reach WeChat Pay at {host} ({_short(exc)}): is PAPAY['BASE_URL'] right, "
            "and is the host (or the sandbox) running and reachable from here?"
        )
    return WeChatPayNetworkError(
        f"the connection to {host} broke before WeChat Pay's answer arrived ({_short(exc)}); "
        "the request may have reached it"
    )


def _never_delivered(exc: requests.RequestException) -> bool:
    """True only when no connection was made, so the request surely never reached the host.

    A reset, a read timeout or a cut answer may come after WeChat Pay acted on the request;
    sending it again to the backup host could then act twice, so those never fall back.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError) or not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)  # refused, unroutable, or the name did not resolve


def _json_object(answer: RawAnswer) -> dict[str, Any]:
    if not answer.body:
        return {}
    try:
        data = json.loads(answer.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidResponseError(
            "WeChat Pay's answer is not a JSON object",
            code="INVALID_RESPONSE_BODY",
            status=answer.status,
            request_id=answer.request_id,
        )
    return data


def _short(exc: Exception) -> str:
    """The exception's class name: urllib3's messages repeat the URL and are long."""
    return type(exc).__name__

"""A loopback WeChat Pay for one merchant: the ``Sandbox`` object tests and the demo drive.

For each request (see ``handler``): take the next queued fault (``faults``), route (``endpoints``),
check headers and the merchant's signature (``validation``), run the endpoint, sign the answer
(``answers``). The other direction, WeChat Pay notifying the merchant when the user signs or a
contract ends, is ``user`` (build with ``notifications``, send with ``delivery``, trigger by hand
through ``control``). No Django here.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto

from . import endpoints, faults, validation
from .answers import Answer, ApiError
from .certificates import PlatformCertificates
from .contracts import ContractBook
from .deductions import DeductionBook
from .delivery import Courier
from .handler import LoopbackServer, RecordedRequest
from .tls import TLSFiles, server_context
from .user import UserActions

__all__ = ["RecordedRequest", "Sandbox"]

logger = logging.getLogger("django_papay.sandbox")


def _private_key(value: rsa.RSAPrivateKey | str | bytes) -> rsa.RSAPrivateKey:
    return value if isinstance(value, rsa.RSAPrivateKey) else crypto.load_private_key(value)


def _public_key(value: rsa.RSAPublicKey | str | bytes) -> rsa.RSAPublicKey:
    return value if isinstance(value, rsa.RSAPublicKey) else crypto.load_public_key(value)


class Sandbox(UserActions):
    """A WeChat Pay simulator for one merchant, served on loopback in a daemon thread.

    ``requests`` records every request that reached the handler (refused ones too), ``presigns``
    every accepted pre-sign by ``pre_entrustweb_id``. ``fail_next``/``answer_next`` queue faults;
    ``response_delay`` slows every answer, ``fault_delay`` is how long the "timeout" fault waits.
    ``tls=(certfile, keyfile)`` (see ``tls.self_signed_certificate``) or an ``ssl.SSLContext`` serves
    https instead of http. Notifications to the merchant (``sign_contract``, ``deliver``, …) come from
    ``UserActions``.
    """

    def __init__(
        self,
        *,
        mchid: str,
        merchant_serial_no: str,
        merchant_public_key: rsa.RSAPublicKey | str | bytes,
        wechatpay_private_key: rsa.RSAPrivateKey | str | bytes,
        wechatpay_public_key_id: str,
        apiv3_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TLSFiles | tuple[str, str] | ssl.SSLContext | None = None,
    ) -> None:
        self.mchid = mchid
        self.merchant_serial_no = merchant_serial_no
        self.merchant_public_key = _public_key(merchant_public_key)
        self._wechatpay_private_key = _private_key(wechatpay_private_key)
        self.wechatpay_public_key_id = wechatpay_public_key_id
        self.apiv3_key = apiv3_key  # seals notifications
        self.host = host
        self.port = port
        self._tls = tls if isinstance(tls, ssl.SSLContext) or tls is None else server_context(tls)
        self.response_delay = 0.0
        self.fault_delay = 3.0
        self.requests: list[RecordedRequest] = []
        self.presigns: dict[str, dict[str, Any]] = {}
        self.contracts = ContractBook()  # what WeChat Pay knows of each contract, for the query endpoint
        self.deductions = DeductionBook()  # the charges, for the deduction query and reverse
        self.certificates = PlatformCertificates()  # none until issued: a public-key-only merchant
        self.notify_rewrite: dict[str, str] = {}
        self.termination_notify_url: str | None = None
        self._courier = Courier()
        self._faults = faults.FaultQueue()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stranger: rsa.RSAPrivateKey | None = None
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<Sandbox mchid={self.mchid} {state}>"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._server = LoopbackServer((self.host, self.port), self, self._tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="papay-sandbox", daemon=True
        )
        self._thread.start()
        logger.info("WeChat Pay sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._courier.cancel_pending()
        server.shutdown()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:  # wake handler threads blocked on idle keep-alive connections
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` when serving TLS) without a trailing slash."""
        if self._server is not None:
            port = self._server.server_address[1]
        elif self.port:
            port = self.port
        else:
            raise RuntimeError("the sandbox picks its port when started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{port}"

    # --- test controls ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests, pre-signs and deliveries, pending faults and notifications, and the
        response delay. ``notify_rewrite`` and ``termination_notify_url`` describe the merchant's site and stay."""
        self._courier.cancel_pending()
        with self._lock:
            self.requests.clear()
            self.presigns.clear()
        self.contracts.clear()
        self.deductions.clear()
        self.certificates.clear()
        self._courier.clear()
        self._faults.clear()
        self.response_delay = 0.0

    def fail_next(self, fault: str, times: int = 1) -> None:
        """Give the next ``times`` requests ``fault`` (see ``faults.FAULTS``); ValueError if unknown."""
        self._faults.push(fault, times)

    def answer_next(
        self,
        status: int,
        code: str,
        message: str = "answer injected by the sandbox",
        times: int = 1,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Give the next ``times`` requests this signed WeChat Pay error answer."""
        self._faults.push(Answer.error(status, code, message, detail), times)

    # --- used by the handler ------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> Answer:
        """Route, check headers and signature, run the endpoint; a refusal becomes its error answer."""
        try:
            route, match = endpoints.resolve(request.method, request.path)
            if route.merchant_api:
                self._check_merchant_request(request)
            return route.handler(self, request, match)
        except ApiError as refusal:
            return refusal.answer()
        except Exception:
            logger.exception("the sandbox failed on %s %s", request.method, request.path)
            return Answer.error(500, "SYSTEM_ERROR", "the sandbox failed; see the django_papay.sandbox log")

    def _check_merchant_request(self, request: RecordedRequest) -> None:
        validation.check_headers(request.method, request.headers, wechatpay_public_key_id=self.wechatpay_public_key_id)
        validation.check_authorization(
            request.method,
            request.path,
            request.headers,
            request.body,
            mchid=self.mchid,
            serial_no=self.merchant_serial_no,
            public_key=self.merchant_public_key,
        )

    def _record_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _record_presign(self, pre_entrustweb_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.presigns[pre_entrustweb_id] = data
        self.contracts.opened(data)

    def _signer(self) -> tuple[rsa.RSAPrivateKey, str]:
        """The key and ``Wechatpay-Serial`` that sign answers and notifications (see ``certificates``)."""
        return self.certificates.signer((self._wechatpay_private_key, self.wechatpay_public_key_id))

    def _stranger_key(self) -> rsa.RSAPrivateKey:
        """A key WeChat Pay never published, for the "unknown_serial" fault (made once, on first use)."""
        with self._lock:
            if self._stranger is None:
                self._stranger = crypto.generate_private_key()
            return self._stranger

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

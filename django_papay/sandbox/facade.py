"""``Sandbox``: the one object tests, the demo and the CLI drive — a thin front over the layers below.

It makes the state (``state``), serves it on loopback (``httpd``), queues faults (``faults``) and plays
the user (``user``); every method hands straight over to one of them. Nothing inside the package
imports this module (except ``keys``, which builds one, and the package's ``__init__``/``__main__``).
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from . import faults
from .bill_desk import BillDesk
from .deduction_book import DeductionBook
from .httpd import LoopbackServer
from .platform_certificates import PlatformCertificates
from .records import Delivery, RecordedRequest
from .refund_book import RefundBook
from .refund_notices import RefundNotices
from .sharing_book import SharingBook
from .state import SandboxState
from .tls import TLSFiles, server_context
from .user import WeChatUser

__all__ = ["Sandbox"]

T = TypeVar("T")

logger = logging.getLogger("django_papay.sandbox")


class _OnState:
    """A ``Sandbox`` attribute kept on its ``state``."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, sandbox: Sandbox | None, owner: type | None = None) -> Any:
        return self if sandbox is None else getattr(sandbox.state, self.name)

    def __set__(self, sandbox: Sandbox, value: Any) -> None:
        setattr(sandbox.state, self.name, value)


def _to_user(method: Callable[..., T]) -> Callable[..., T]:
    """``Sandbox.<name>`` as ``WeChatUser.<name>`` on the sandbox's ``user`` (same signature and docs)."""

    @functools.wraps(method)
    def delegate(sandbox: Sandbox, *args: Any, **kwargs: Any) -> T:
        return method(sandbox.user, *args, **kwargs)

    return delegate


class Sandbox:
    """A WeChat Pay simulator for one merchant, served on loopback in a daemon thread.

    ``requests`` records every merchant-API request that reached it (refused ones too), ``presigns``
    every accepted pre-sign by ``pre_entrustweb_id``. ``fail_next``/``answer_next`` queue faults;
    ``response_delay`` slows every answer, ``fault_delay`` is how long the "timeout" fault waits.
    ``tls=(certfile, keyfile)`` (see ``tls.self_signed_certificate``) or an ``ssl.SSLContext`` serves
    https. With ``state_file`` the pre-signs and contracts are kept in that JSON file across restarts.
    Playing the user (``sign_contract``, ``deliver``, …) is ``WeChatUser``'s, reached through ``user``.
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
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.state = SandboxState(
            mchid=mchid,
            merchant_serial_no=merchant_serial_no,
            merchant_public_key=merchant_public_key,
            wechatpay_private_key=wechatpay_private_key,
            wechatpay_public_key_id=wechatpay_public_key_id,
            apiv3_key=apiv3_key,
            state_file=state_file,
        )
        self.user = WeChatUser(self.state)
        self.faults = self.state.faults  # on the state, so the loopback controls can queue faults too
        self.host = host
        self.port = port
        self._tls = tls if isinstance(tls, ssl.SSLContext) or tls is None else server_context(tls)
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<Sandbox mchid={self.state.mchid} {self.url if self._server else 'stopped'}>"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._server = LoopbackServer((self.host, self.port), self.state, self.faults, self._tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="papay-sandbox", daemon=True
        )
        self._thread.start()
        self.state.base_url = self.url
        logger.info("WeChat Pay sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.state.deliveries.cancel_pending()
        server.shutdown()
        server.close_connections()
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
        return f"{'https' if self._tls is not None else 'http'}://{host}:{port}"

    # --- what it knows and saw ----------------------------------------------------------------

    @property
    def mchid(self) -> str:
        return self.state.mchid

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every merchant-API request since the last ``reset()``, oldest first (the live list)."""
        return self.state.requests

    @property
    def presigns(self) -> Mapping[str, dict[str, Any]]:
        """Every accepted pre-sign by ``pre_entrustweb_id`` (a read-only snapshot of the contract book)."""
        return MappingProxyType(self.state.contracts.presigns())

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt made since the last ``reset()``, oldest first (a snapshot)."""
        return self.state.deliveries.snapshot()

    @property
    def certificates(self) -> PlatformCertificates:
        return self.state.certificates

    @property
    def bills(self) -> BillDesk:
        """The bills' switches (not ready, a damaged hash, a missing column, …) and charges only WeChat Pay has."""
        return self.state.bills

    @property
    def deductions(self) -> DeductionBook:
        """The charges WeChat Pay took, ``posts`` per number, and the ``trade_state`` switch for the next ones."""
        return self.state.deductions

    @property
    def sharing(self) -> SharingBook:
        """Frozen and available funds per merchant (``balance``), shares, returns and subsidies."""
        return self.state.sharing

    def balance(self, mchid: str) -> dict[str, int]:
        """``{"frozen", "available"}`` in fen for a sub-merchant or the platform (the sandbox's merchant)."""
        return self.state.sharing.balance(mchid)

    @property
    def refunds(self) -> RefundBook:
        """The refunds WeChat Pay took, ``posts`` per number, and the ``outcome`` / ``not_enough`` switches."""
        return self.state.refunds

    def refund_notification(self, out_refund_no: str, /, **kwargs: Any) -> Any:
        """REFUND.<status> for a refund the sandbox took (nothing sent); see ``RefundNotices.refund_notification``."""
        return RefundNotices(self.state).refund_notification(out_refund_no, **kwargs)

    def notify_refund(self, out_refund_no: str, **kwargs: Any) -> list[Delivery]:
        """Deliver a refund's REFUND.<status> to its notify_url (again); see ``RefundNotices.notify_refund``."""
        return RefundNotices(self.state).notify_refund(out_refund_no, **kwargs)

    def finish_refund(self, out_refund_no: str, status: str = "SUCCESS", **kwargs: Any) -> list[Delivery]:
        """A refund WeChat Pay ends later (``status``), its REFUND.* delivered; see ``RefundNotices.finish_refund``."""
        return RefundNotices(self.state).finish_refund(out_refund_no, status, **kwargs)

    # --- test controls ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget requests, pre-signs, contracts, certificates and deliveries, pending faults and notifications,
        the response delay and ``notify_contract_id``. ``notify_rewrite`` and ``termination_notify_url`` describe
        the merchant's site and stay."""
        self.state.reset()
        self.faults.clear()

    def fail_next(self, fault: str, times: int = 1) -> None:
        """Give the next ``times`` requests ``fault`` (see ``faults.FAULTS``); ValueError if unknown."""
        self.faults.push(faults.named(fault), times)

    def answer_next(
        self,
        status: int,
        code: str,
        message: str = "answer injected by the sandbox",
        times: int = 1,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Give the next ``times`` requests this signed WeChat Pay error answer."""
        self.faults.push(faults.ErrorAnswer(status, code, message, detail), times)

    def alter_next(self, change: Callable[[Any], None], times: int = 1) -> None:
        """Give the next ``times`` requests their normal answer with its JSON changed in place by ``change``."""
        self.faults.push(faults.Altered(change), times)

    # Knobs that live on the state, read and set here as plain attributes.
    response_delay = _OnState("Seconds to wait before every merchant-API answer.")
    fault_delay = _OnState('Seconds the "timeout" fault holds its answer, and "late_arrival" its request.')
    notify_rewrite = _OnState(
        "URL prefix → replacement applied to notifications, playing the TLS proxy in front of the merchant's site."
    )
    termination_notify_url = _OnState(
        "The deduction template's termination URL; None sends TERMINATE to the pre-sign notify_url."
    )
    notify_contract_id = _OnState(
        "True: SIGN and TERMINATE carry contract_id (as one SDK maps it). False, the default, as documented: "
        "they do not, and the merchant learns it from the contract query."
    )

    # --- playing the user (see user.WeChatUser) -------------------------------------------------

    presign_for = _to_user(WeChatUser.presign_for)
    sign_notification = _to_user(WeChatUser.sign_notification)
    terminate_notification = _to_user(WeChatUser.terminate_notification)
    notification = _to_user(WeChatUser.notification)
    deliver = _to_user(WeChatUser.deliver)
    sign_contract = _to_user(WeChatUser.sign_contract)
    terminate_contract = _to_user(WeChatUser.terminate_contract)
    deliver_out_of_order = _to_user(WeChatUser.deliver_out_of_order)
    record = _to_user(WeChatUser.record)

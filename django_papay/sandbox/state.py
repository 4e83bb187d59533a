"""The state of the sandbox's WeChat Pay, the bottom layer: who the merchant is, what is known, what happened.

``SandboxState`` holds the merchant's identity and keys, the stores (``contracts``: pre-signs and
contracts; ``deductions``: charges; ``refunds``: refunds; ``sharing``: frozen funds and profit sharing;
``certificates``: platform certificates; ``bills``: the day's bills), the
request and delivery logs, and the knobs a test turns (``notify_rewrite``, ``termination_notify_url``,
``response_delay``, ``fault_delay``, ``notify_contract_id``). Handlers, user actions and the HTTP server all
work on one of these; it imports none of them.

With a ``state_file`` the persisted stores (``PERSISTED``) are saved there as JSON after every change,
atomically, and loaded when the state is made, so a restarted sandbox still knows its contracts. Platform
certificates (their private keys) and the logs are not persisted.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto

from .bill_desk import BillDesk
from .contract_book import ContractBook
from .deduction_book import DeductionBook
from .fault_queue import FaultQueue
from .platform_certificates import PlatformCertificates
from .records import DeliveryLog, RequestLog
from .refund_book import RefundBook
from .sharing_book import SharingBook

STATE_FILE_VERSION = 1
FAULT_DELAY = 3.0  # seconds the "timeout" fault holds its answer, unless a test sets another


class Store(Protocol):
    """What a persisted store offers the state: a change hook, and JSON in and out."""

    on_change: Any

    def dump(self) -> dict[str, Any]: ...

    def load(self, data: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


class SandboxState:
    """Everything the sandbox's WeChat Pay knows about its one merchant. Thread-safe."""

    # The stores saved to ``state_file``, by attribute name; a new endpoint family adds its store here.
    PERSISTED = ("contracts", "deductions", "refunds", "sharing")

    def __init__(
        self,
        *,
        mchid: str,
        merchant_serial_no: str,
        merchant_public_key: rsa.RSAPublicKey | str | bytes,
        wechatpay_private_key: rsa.RSAPrivateKey | str | bytes,
        wechatpay_public_key_id: str,
        apiv3_key: str,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.mchid = mchid
        self.merchant_serial_no = merchant_serial_no
        self.merchant_public_key = _public_key(merchant_public_key)
        self.wechatpay_private_key = _private_key(wechatpay_private_key)
        self.wechatpay_public_key_id = wechatpay_public_key_id
        self.apiv3_key = apiv3_key  # seals notifications and the certificate list
        self.contracts = ContractBook()
        self.deductions = DeductionBook()
        self.sharing = SharingBook(self.deductions.paid)  # frozen funds, shares, returns, subsidies
        self.refunds = RefundBook()
        self.certificates = PlatformCertificates()  # none until issued: a public-key-only merchant
        self.bills = BillDesk()  # bills made from the books on request; not persisted
        self.base_url = ""  # where it is served (set when started): the bills' download URLs point there
        self.requests = RequestLog()
        self.faults = FaultQueue()  # taken by the next merchant-API requests (see faults.py)
        self.deliveries = DeliveryLog()
        # Where notifications go: URL prefix → replacement, playing the TLS proxy in front of the merchant's
        # site; and the deduction template's termination URL (None: TERMINATE goes to the pre-sign notify_url).
        self.notify_rewrite: dict[str, str] = {}
        self.termination_notify_url: str | None = None
        self.response_delay = 0.0  # seconds before every merchant-API answer
        self.fault_delay = FAULT_DELAY  # seconds the "timeout" fault holds its answer
        # SIGN and TERMINATE as documented carry no contract_id (the merchant queries it); one SDK maps one.
        self.notify_contract_id = False
        self.state_file = Path(state_file) if state_file is not None else None
        self._save_lock = threading.Lock()
        if self.state_file is not None:
            self.load()
        for store in self.stores.values():
            store.on_change = self.save

    def __repr__(self) -> str:
        return f"<SandboxState mchid={self.mchid}>"

    @property
    def stores(self) -> dict[str, Store]:
        return {name: getattr(self, name) for name in self.PERSISTED}

    def signer(self) -> tuple[rsa.RSAPrivateKey, str]:
        """``(private key, Wechatpay-Serial)`` that sign answers and notifications: the WeChat Pay public
        key's, or the newest platform certificate's when ``certificates.sign_with_certificate`` is on."""
        if not self.certificates.sign_with_certificate:
            return self.wechatpay_private_key, self.wechatpay_public_key_id
        current = self.certificates.current
        if current is None:
            raise RuntimeError("sign_with_certificate is on but no certificate was issued; call issue() first")
        return current.private_key, current.serial_no

    def rewrite(self, url: str) -> str:
        """``url`` after the longest matching ``notify_rewrite`` prefix is replaced."""
        prefixes = [prefix for prefix in self.notify_rewrite if url.startswith(prefix)]
        if not prefixes:
            return url
        prefix = max(prefixes, key=len)
        return self.notify_rewrite[prefix] + url[len(prefix) :]

    def reset(self) -> None:
        """Forget requests, deliveries (pending ones cancelled), the stores and certificates, the response and
        fault delays, and ``notify_contract_id``. ``notify_rewrite`` and ``termination_notify_url`` describe the
        merchant's site and stay."""
        self.deliveries.cancel_pending()
        self.deliveries.clear()
        self.requests.clear()
        for store in self.stores.values():
            store.clear()
        self.certificates.clear()
        self.bills.clear()
        self.response_delay = 0.0
        self.fault_delay = FAULT_DELAY
        self.notify_contract_id = False

    # --- persistence ----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the persisted stores to ``state_file`` (if any): a temporary file, then an atomic rename."""
        if self.state_file is None:
            return
        with self._save_lock:
            data = {"version": STATE_FILE_VERSION, **{name: store.dump() for name, store in self.stores.items()}}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_file.with_name(f".{self.state_file.name}.{secrets.token_hex(4)}.tmp")
            try:
                temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
                os.replace(temporary, self.state_file)
            finally:
                temporary.unlink(missing_ok=True)

    def load(self) -> None:
        """Read the persisted stores from ``state_file``; a missing file is an empty state."""
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            if data.get("version") != STATE_FILE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            for name, store in self.stores.items():
                store.load(data.get(name, {}))
        except (ValueError, AttributeError) as exc:
            problem = f"{self.state_file} is not a sandbox state file ({exc}); delete it to start afresh"
            raise ValueError(problem) from exc


def _private_key(value: rsa.RSAPrivateKey | str | bytes) -> rsa.RSAPrivateKey:
    return value if isinstance(value, rsa.RSAPrivateKey) else crypto.load_private_key(value)


def _public_key(value: rsa.RSAPublicKey | str | bytes) -> rsa.RSAPublicKey:
    return value if isinstance(value, rsa.RSAPublicKey) else crypto.load_public_key(value)

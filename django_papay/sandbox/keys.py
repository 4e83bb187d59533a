"""Demo credentials for the sandbox: a merchant key and serial, a WeChat Pay key pair, an APIv3 key.

``ensure_demo_keys(directory)`` creates what is missing and loads what is there, so the demo and the
sandbox agree on the same keys across runs. They are made up; never use them with the real WeChat Pay.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django_papay import crypto, wechatpay

from .facade import Sandbox
from .tls import TLSFiles

DEMO_MCHID = "1900000109"

MERCHANT_PRIVATE_KEY_FILE = "merchant_private_key.pem"
WECHATPAY_PRIVATE_KEY_FILE = "wechatpay_private_key.pem"
WECHATPAY_PUBLIC_KEY_FILE = "wechatpay_public_key.pem"
IDENTITY_FILE = "demo.json"  # holds the APIv3 key, so it is private (0600) too
IDENTITY_FIELDS = ("mchid", "merchant_serial_no", "wechatpay_public_key_id", "apiv3_key")
STATE_FILE = "sandbox-state.json"  # the sandbox's pre-signs and contracts, for DemoKeys.state_file


@dataclass(frozen=True)
class DemoKeys:
    """A loaded folder of demo credentials; paths are strings so they drop straight into settings."""

    mchid: str
    merchant_serial_no: str
    merchant_private_key_path: str
    merchant_public_key_pem: str
    wechatpay_private_key_path: str
    wechatpay_public_key_path: str
    wechatpay_public_key_id: str
    apiv3_key: str

    def __repr__(self) -> str:
        # Keep the APIv3 key out of logs and tracebacks.
        return f"DemoKeys(mchid={self.mchid!r}, merchant_serial_no={self.merchant_serial_no!r}, ...)"

    @property
    def state_file(self) -> str:
        """``sandbox-state.json`` next to the keys: where a sandbox of these keys may keep its contracts."""
        return str(Path(self.merchant_private_key_path).with_name(STATE_FILE))

    def sandbox(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TLSFiles | None = None,
        state_file: str | os.PathLike[str] | None = None,
    ) -> Sandbox:
        """A Sandbox configured with these keys, not started; https with ``tls``; its pre-signs and contracts
        kept in ``state_file`` (e.g. ``self.state_file``) across restarts."""
        return Sandbox(
            mchid=self.mchid,
            merchant_serial_no=self.merchant_serial_no,
            merchant_public_key=self.merchant_public_key_pem,
            wechatpay_private_key=crypto.read_key_file(self.wechatpay_private_key_path),
            wechatpay_public_key_id=self.wechatpay_public_key_id,
            apiv3_key=self.apiv3_key,
            host=host,
            port=port,
            tls=tls,
            state_file=state_file,
        )

    def papay_settings(
        self, *, base_url: str = "http://127.0.0.1:8765", notify_url: str, appid: str = "", **more: object
    ) -> dict[str, object]:
        """A ``PAPAY`` dict for a site calling the sandbox that runs on these keys (``--keys-dir``) at ``base_url``:
        each file of the folder in its setting. ``more`` adds or overrides settings (``RETURN_APP``, ``TIMEOUT``…)."""
        return {
            "MCHID": self.mchid,
            "MERCHANT_SERIAL_NO": self.merchant_serial_no,
            "MERCHANT_PRIVATE_KEY_PATH": self.merchant_private_key_path,
            "APIV3_KEY": self.apiv3_key,
            "WECHATPAY_PUBLIC_KEY_PATH": self.wechatpay_public_key_path,
            "WECHATPAY_PUBLIC_KEY_ID": self.wechatpay_public_key_id,
            "BASE_URL": base_url,
            "NOTIFY_URL": notify_url,
            **({"APPID": appid} if appid else {}),
            **more,
        }


def new_merchant_serial_no() -> str:
    """40 upper-case hex characters, the shape of a merchant API certificate serial."""
    return wechatpay.nonce(40, wechatpay.UPPER_HEX)


def new_wechatpay_public_key_id(mchid: str) -> str:
    """``PUB_KEY_ID_`` + 34 digits, shaped like the real ones: ``01``, mchid, date, a running number."""
    digits = f"01{mchid}{time.strftime('%Y%m%d')}{secrets.randbelow(10**14):014d}"
    return wechatpay.PUBLIC_KEY_ID_PREFIX + digits


def new_apiv3_key() -> str:
    return wechatpay.nonce(crypto.APIV3_KEY_BYTES)


def _create_if_missing(path: Path, content: str, mode: int) -> None:
    """Write ``path`` atomically unless it exists; a concurrent creator wins and its content is kept."""
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content)
        os.link(temporary, path)  # fails if another process created it meanwhile
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: last writer wins
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def ensure_demo_keys(directory: str | Path) -> DemoKeys:
    """Create the demo credentials in ``directory`` where missing, then load them all from disk."""
    folder = Path(directory).expanduser().resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    merchant_key_path = folder / MERCHANT_PRIVATE_KEY_FILE
    wechatpay_key_path = folder / WECHATPAY_PRIVATE_KEY_FILE
    wechatpay_public_path = folder / WECHATPAY_PUBLIC_KEY_FILE
    identity_path = folder / IDENTITY_FILE

    if not merchant_key_path.exists():
        _create_if_missing(merchant_key_path, crypto.private_key_pem(crypto.generate_private_key()), 0o600)
    if not wechatpay_key_path.exists():
        wechatpay_public_path.unlink(missing_ok=True)  # a public key without its private half is useless
        _create_if_missing(wechatpay_key_path, crypto.private_key_pem(crypto.generate_private_key()), 0o600)
    wechatpay_key = crypto.load_private_key(crypto.read_key_file(wechatpay_key_path))
    _create_if_missing(wechatpay_public_path, crypto.public_key_pem(wechatpay_key.public_key()), 0o644)
    if not identity_path.exists():
        identity = {
            "mchid": DEMO_MCHID,
            "merchant_serial_no": new_merchant_serial_no(),
            "wechatpay_public_key_id": new_wechatpay_public_key_id(DEMO_MCHID),
            "apiv3_key": new_apiv3_key(),
        }
        _create_if_missing(identity_path, json.dumps(identity, indent=2) + "\n", 0o600)

    try:
        stored = json.loads(identity_path.read_text(encoding="utf-8"))
        mchid, serial, key_id, apiv3_key = (str(stored[name]) for name in IDENTITY_FIELDS)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{identity_path} is not a demo identity file; delete it to make a new one") from exc
    merchant_key = crypto.load_private_key(crypto.read_key_file(merchant_key_path))
    return DemoKeys(
        mchid=mchid,
        merchant_serial_no=serial,
        merchant_private_key_path=str(merchant_key_path),
        merchant_public_key_pem=crypto.public_key_pem(merchant_key.public_key()),
        wechatpay_private_key_path=str(wechatpay_key_path),
        wechatpay_public_key_path=str(wechatpay_public_path),
        wechatpay_public_key_id=key_id,
        apiv3_key=apiv3_key,
    )

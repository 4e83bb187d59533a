"""The keys ``PAPAY`` names, loaded once: the merchant's API private key and the WeChat Pay public key.

A key is given as PEM text (``PAPAY[KEY]``) or as a PEM file (``PAPAY[KEY + "_PATH"]``, read when the text is
not given); crypto.py parses it. Parsed keys are cached by their text, files by path and modification time:
a changed setting is picked up at once, a replaced file within ``FILE_CHECK_SECONDS`` (a file's time is looked
up at most that often: every notification and every API call reads a key), an unchanged one is never parsed
twice. Errors name the
setting to fix and never echo a key. ``manage.py check`` loads keys through here too, so it refuses exactly
what a request would.

Also ``ClientSettings``, everything the APIv3 client is built from (``conf.client_settings()`` reads it).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured

from . import crypto

if TYPE_CHECKING:
    from .conf import Setting


class KeySettingError(ImproperlyConfigured):
    """A key setting that gives no key. ``setting`` is the ``PAPAY`` key to fix; ``reason`` says why:
    "missing", "unreadable" (the file), or crypto's reason ("not_pem", "not_rsa")."""

    def __init__(self, setting: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.reason = reason


def source(text: Setting[Any], path: Setting[Any]) -> Setting[Any]:
    """The setting a key is read from: its PEM text when given, else its file."""
    return text if text.given() else path


def _pem(text: Setting[str | bytes | None], path: Setting[str | None]) -> tuple[Setting[Any], str | bytes]:
    """``(the setting it came from, the PEM)``."""
    pem = text()
    if pem is not None:
        return text, pem
    file = path()
    if file is None:
        raise KeySettingError(text.key, "missing", f"Set {text.name} (PEM text) or {path.name} (a PEM file).")
    try:
        return path, _read_pem_file(file, _modified(file))
    except OSError as exc:  # no such file, a folder, no permission
        raise KeySettingError(path.key, "unreadable", f"{path.name} cannot be read: {exc.strerror}.") from exc


# How stale a key file's modification time may be: a replaced key is in use within this.
FILE_CHECK_SECONDS = 2.0
_checked: dict[str, tuple[float, int]] = {}  # path → (when it was looked up, its st_mtime_ns); only files that exist


def _modified(path: str) -> int:
    """The file's modification time (ns), looked up at most once per ``FILE_CHECK_SECONDS``; raises OSError."""
    now = time.monotonic()
    checked = _checked.get(path)
    if checked is not None and now - checked[0] < FILE_CHECK_SECONDS:
        return checked[1]
    mtime = os.stat(path).st_mtime_ns
    _checked[path] = (now, mtime)
    return mtime


@functools.lru_cache(maxsize=16)
def _read_pem_file(path: str, mtime_ns: int) -> bytes:
    return crypto.read_key_file(path)


@functools.lru_cache(maxsize=16)
def _parse_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    return crypto.load_private_key(pem)


@functools.lru_cache(maxsize=16)
def _parse_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    return crypto.load_public_key(pem)


def load_merchant_private_key(text: Setting[str | bytes | None], path: Setting[str | None]) -> rsa.RSAPrivateKey:
    setting, pem = _pem(text, path)
    try:
        return _parse_private_key(pem)
    except crypto.KeyLoadError as exc:
        message = f"{setting.name} is not the merchant's API private key: {exc}."
        raise KeySettingError(setting.key, exc.reason, message) from exc


def load_wechatpay_public_key(text: Setting[str | bytes | None], path: Setting[str | None]) -> rsa.RSAPublicKey:
    setting, pem = _pem(text, path)
    try:
        return _parse_public_key(pem)
    except crypto.KeyLoadError as exc:
        message = f"{setting.name} is not the WeChat Pay public key: {exc}."
        raise KeySettingError(setting.key, exc.reason, message) from exc


@dataclass(frozen=True, eq=False)
class ClientSettings:
    """Everything the APIv3 client needs, read and validated in one go."""

    mchid: str
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    wechatpay_public_keys: tuple[tuple[str, rsa.RSAPublicKey], ...]
    wechatpay_serial: str | None  # sent as Wechatpay-Serial; None leaves the header out
    base_url: str
    timeout: tuple[float, float]
    backup_base_url: str | None = None
    platform_certificates: bool = False
    ca_bundle: str | None = None  # None: requests' default trust

    def identity(self) -> tuple:
        """Equal for equal settings. Key objects compare by identity: they are parsed once and cached
        (above), and a client holding this object keeps them alive, so an ``id`` is never reused meanwhile."""
        return (
            self.mchid,
            self.merchant_serial_no,
            id(self.merchant_private_key),
            tuple((serial, id(key)) for serial, key in self.wechatpay_public_keys),
            self.wechatpay_serial,
            self.base_url,
            self.timeout,
            self.backup_base_url,
            self.platform_certificates,
            self.ca_bundle,
        )

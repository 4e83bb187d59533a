"""The ``PAPAY`` settings dict, read when used (never at import) so ``override_settings`` works.

Every accessor raises ``ImproperlyConfigured`` naming the key to set. Keys are parsed once and
cached by their text (or file path and modification time), so changing a setting picks up the
new key while an unchanged one is never parsed twice.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import crypto, wechatpay

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
# WeChat Pay's backup access point; used only when BACKUP_BASE_URL is set (see client.py).
WECHATPAY_BACKUP_BASE_URL = "https://api2.mch.weixin.qq.com"
# (connect, read) seconds; WeChat Pay answers pre-sign in well under a second.
DEFAULT_TIMEOUT = (5.0, 15.0)

# Seconds a deduct call waits for its answer: WeChat Pay's merchant timeout for this product is 1 minute.
DEFAULT_DEDUCT_TIMEOUT = 60.0

# Age after which the stored platform certificates are due for another download.
DEFAULT_CERTIFICATE_REFRESH_INTERVAL = 12 * 3600.0

# Settings that make up the WeChat Pay public key (微信支付公钥) key source.
PUBLIC_KEY_SETTINGS = ("WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID")

_MISSING = object()


def _name(key: str) -> str:
    return f'settings.PAPAY["{key}"]'


def _papay() -> dict[str, Any]:
    value = getattr(settings, "PAPAY", None)
    if value is None:
        raise ImproperlyConfigured("django_papay needs a PAPAY = {...} dict in your settings (see the README).")
    if not isinstance(value, dict):
        raise ImproperlyConfigured("settings.PAPAY must be a dict.")
    return value


def get(key: str, default: Any = _MISSING) -> Any:
    """The raw value of ``PAPAY[key]``; missing or empty without a default raises ImproperlyConfigured."""
    value = _papay().get(key)
    if value in (None, ""):
        if default is _MISSING:
            raise ImproperlyConfigured(f"{_name(key)} is required but not set.")
        return default
    return value


def _text(key: str, pattern: str, what: str) -> str:
    value = get(key)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ImproperlyConfigured(f"{_name(key)} must be {what}.")
    return value


def mchid() -> str:
    return _text("MCHID", r"[0-9]{1,32}", "the merchant id, digits only")


def merchant_serial_no() -> str:
    return _text("MERCHANT_SERIAL_NO", r"[0-9A-Fa-f]{8,64}", "the merchant API certificate serial number (hex)")


def wechatpay_public_key_id() -> str:
    return _text(
        "WECHATPAY_PUBLIC_KEY_ID",
        rf"{wechatpay.PUBLIC_KEY_ID_PREFIX}[0-9A-Za-z_]+",
        f'the WeChat Pay public key id ("{wechatpay.PUBLIC_KEY_ID_PREFIX}…")',
    )


def apiv3_key() -> bytes:
    value = get("APIV3_KEY")
    if not isinstance(value, str) or len(value.encode("utf-8")) != crypto.APIV3_KEY_BYTES:
        raise ImproperlyConfigured(f"{_name('APIV3_KEY')} must be the 32-character APIv3 key.")
    return value.encode("utf-8")


def appid() -> str:
    """The default AppID for contracts that leave theirs blank ("" when not set)."""
    value = get("APPID", "")
    if not isinstance(value, str) or len(value) > 32:
        raise ImproperlyConfigured(f"{_name('APPID')} must be an AppID of at most 32 characters.")
    return value


def notify_url() -> str:
    value = get("NOTIFY_URL")
    parts = urlsplit(value) if isinstance(value, str) else None
    # WeChat Pay refuses a notify_url that is not https or that carries a query string.
    if not parts or parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment or len(value) > 256:
        raise ImproperlyConfigured(
            f"{_name('NOTIFY_URL')} must be an absolute https:// URL of at most 256 characters without a query string."
        )
    return value


def _host_url(key: str, value: Any, example: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
        raise ImproperlyConfigured(f"{_name(key)} must be an absolute URL such as {example}.")
    return value.rstrip("/")


def base_url() -> str:
    return _host_url("BASE_URL", get("BASE_URL", DEFAULT_BASE_URL), DEFAULT_BASE_URL)


def backup_base_url() -> str | None:
    """Where to send a request the main host could not be reached for (``None``: nowhere, the default)."""
    value = get("BACKUP_BASE_URL", None)
    return None if value is None else _host_url("BACKUP_BASE_URL", value, WECHATPAY_BACKUP_BASE_URL)


def timeout() -> tuple[float, float]:
    """``(connect, read)`` seconds; ``TIMEOUT`` may be one number for both or a pair."""
    value = get("TIMEOUT", DEFAULT_TIMEOUT)
    pair = (value, value) if isinstance(value, (int, float)) else value
    try:
        connect, read = (float(part) for part in pair)
    except (TypeError, ValueError):
        connect = read = -1.0
    if isinstance(value, bool) or connect <= 0 or read <= 0:
        raise ImproperlyConfigured(f"{_name('TIMEOUT')} must be positive seconds, or a (connect, read) pair.")
    return connect, read


def ca_bundle() -> str | None:
    """A PEM bundle of the CAs trusted for ``BASE_URL``/``BACKUP_BASE_URL``; ``None``: the default trust.

    The default is what ``requests`` trusts (``certifi``, or ``REQUESTS_CA_BUNDLE``). Set it for a
    TLS-inspecting proxy, or a sandbox served with its own certificate.
    """
    value = get("CA_BUNDLE", None)
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.path.exists(value):
        raise ImproperlyConfigured(
            f"{_name('CA_BUNDLE')} must be the path of a PEM file (or folder) of CA certificates; {value!r} is not."
        )
    return os.fspath(value)


def deduct_timeout() -> float:
    """Seconds the deduct call waits for WeChat Pay's answer: the charge is synchronous, and WeChat Pay's
    documented window is one minute (``TIMEOUT``'s read part, meant for quick calls, does not apply)."""
    value = get("DEDUCT_TIMEOUT", DEFAULT_DEDUCT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"{_name('DEDUCT_TIMEOUT')} must be a positive number of seconds.")
    return float(value)


def combine_appid() -> str:
    """The platform's AppID sent as a deduction's ``combine_appid`` ("" when not set: the contract's AppID)."""
    value = get("COMBINE_APPID", "")
    if not isinstance(value, str) or len(value) > 32:
        raise ImproperlyConfigured(f"{_name('COMBINE_APPID')} must be an AppID of at most 32 characters.")
    return value


def extra_appids() -> tuple[str, ...]:
    """AppIDs besides ``APPID`` and ``COMBINE_APPID`` that this site's contracts may be signed under (default none)."""
    value = get("EXTRA_APPIDS", ())
    if isinstance(value, str) or not all(isinstance(item, str) and 0 < len(item) <= 32 for item in value):
        raise ImproperlyConfigured(f"{_name('EXTRA_APPIDS')} must be a list of AppIDs of at most 32 characters.")
    return tuple(value)


def appids() -> frozenset[str]:
    """Every AppID configured for this site: ``APPID``, ``COMBINE_APPID`` and ``EXTRA_APPIDS``."""
    return frozenset(filter(None, (appid(), combine_appid(), *extra_appids())))


def bulk_concurrency() -> int:
    """How many WeChat Pay calls a bulk action (or ``papay_sync``) keeps in flight at once."""
    value = get("BULK_CONCURRENCY", 4)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ImproperlyConfigured(f"{_name('BULK_CONCURRENCY')} must be a whole number from 1 to 32.")
    return value


def return_app() -> bool | None:
    """The default ``return_app`` sent with APP pre-signs; ``None`` leaves it out."""
    value = get("RETURN_APP", None)
    if value is not None and not isinstance(value, bool):
        raise ImproperlyConfigured(f"{_name('RETURN_APP')} must be True, False or None.")
    return value


def platform_certificates() -> bool:
    """Whether WeChat Pay's platform certificates (平台证书) are downloaded, stored and trusted."""
    value = get("PLATFORM_CERTIFICATES", False)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{_name('PLATFORM_CERTIFICATES')} must be True or False.")
    return value


def certificate_refresh_interval() -> float:
    """Seconds after which the stored platform certificates are due to be downloaded again."""
    value = get("CERTIFICATE_REFRESH_INTERVAL", DEFAULT_CERTIFICATE_REFRESH_INTERVAL)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"{_name('CERTIFICATE_REFRESH_INTERVAL')} must be a positive number of seconds.")
    return float(value)


# --- the App's self-service endpoints (app_api.py) ---------------------------------------------

DEFAULT_APP_PRESIGN_LIMIT = (10, 3600.0)  # pre-signs a user may make the server send, per this many seconds
DEFAULT_APP_REFRESH_INTERVAL = 5.0
DEFAULT_DISPLAY_ACCOUNT = "django_papay.services.app.masked_username"


def app_plan_ids() -> frozenset[int]:
    """The plan ids (委托代扣协议模板) users may sign from the App; the App names one in each pre-sign."""
    value = get("APP_PLAN_IDS")
    if (
        not isinstance(value, (list, tuple, set, frozenset))
        or not value
        or any(isinstance(plan, bool) or not isinstance(plan, int) or plan < 1 for plan in value)
    ):
        raise ImproperlyConfigured(f"{_name('APP_PLAN_IDS')} must be a list of plan ids (positive whole numbers).")
    return frozenset(value)


def app_presign_limit() -> tuple[int, float]:
    """``(count, seconds)``: at most ``count`` pre-signs sent for one user within any ``seconds``."""
    value = get("APP_PRESIGN_LIMIT", DEFAULT_APP_PRESIGN_LIMIT)
    try:
        count, seconds = value
    except (TypeError, ValueError):
        count = seconds = None
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or count < 1
        or isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or seconds <= 0
    ):
        raise ImproperlyConfigured(
            f"{_name('APP_PRESIGN_LIMIT')} must be (count, seconds), e.g. (10, 3600) for 10 pre-signs an hour."
        )
    return count, float(seconds)


def app_refresh_interval() -> float:
    """Seconds between two queries a user's ``?refresh=1`` may make WeChat Pay answer about one contract."""
    value = get("APP_REFRESH_INTERVAL", DEFAULT_APP_REFRESH_INTERVAL)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ImproperlyConfigured(f"{_name('APP_REFRESH_INTERVAL')} must be a number of seconds (0 or more).")
    return float(value)


def _function(key: str, default: str | None) -> Callable[..., Any] | None:
    value = get(key, default)
    if value is None or callable(value):
        return value
    try:
        return import_string(value)
    except (ImportError, TypeError) as exc:
        raise ImproperlyConfigured(f"{_name(key)} must be a function or the dotted path of one: {exc}.") from exc


def display_account() -> Callable[[Any], str]:
    """The function of a user that gives the ``contract_display_account`` of the contracts they sign."""
    return cast(Callable[[Any], str], _function("DISPLAY_ACCOUNT", DEFAULT_DISPLAY_ACCOUNT))


def app_authenticate() -> Callable[[Any], Any] | None:
    """The site's function of a request that returns the user its token names, or None (then: the session)."""
    return _function("APP_AUTHENTICATE", None)


def tasks_enabled() -> bool:
    """Whether bulk work (admin actions, commands) is enqueued as Django Tasks instead of run in the request."""
    value = get("TASKS", False)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{_name('TASKS')} must be True or False.")
    return value


def max_calls_per_second() -> int | None:
    """The calls per second every task worker on every host shares (``None``: no limit, the default)."""
    value = get("MAX_CALLS_PER_SECOND", None)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ImproperlyConfigured(f"{_name('MAX_CALLS_PER_SECOND')} must be a whole number of at least 1, or None.")
    return value


# --- keys, parsed once ----------------------------------------------------------------------


def _pem(key: str) -> tuple[str, str | bytes]:
    """Where a PEM comes from: ``PAPAY[key]`` (text) or ``PAPAY[key + "_PATH"]`` (a file)."""
    text = get(key, None)
    if text is not None:
        return key, text
    path = get(f"{key}_PATH", None)
    if path is None:
        raise ImproperlyConfigured(f"Set {_name(key)} (PEM text) or {_name(key + '_PATH')} (a PEM file).")
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ImproperlyConfigured(f"{_name(key + '_PATH')} cannot be read: {exc.strerror}.") from exc
    return f"{key}_PATH", _read_pem_file(os.fspath(path), mtime)


@functools.lru_cache(maxsize=16)
def _read_pem_file(path: str, mtime_ns: int) -> bytes:
    return crypto.read_key_file(path)


@functools.lru_cache(maxsize=16)
def _parse_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    return crypto.load_private_key(pem)


@functools.lru_cache(maxsize=16)
def _parse_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    return crypto.load_public_key(pem)


def merchant_private_key() -> rsa.RSAPrivateKey:
    source, pem = _pem("MERCHANT_PRIVATE_KEY")
    try:
        return _parse_private_key(pem)
    except crypto.KeyLoadError as exc:
        raise ImproperlyConfigured(f"{_name(source)} is not the merchant's API private key: {exc}.") from exc


def wechatpay_public_key() -> rsa.RSAPublicKey:
    source, pem = _pem("WECHATPAY_PUBLIC_KEY")
    try:
        return _parse_public_key(pem)
    except crypto.KeyLoadError as exc:
        raise ImproperlyConfigured(f"{_name(source)} is not the WeChat Pay public key: {exc}.") from exc


def public_key_configured() -> bool:
    """True when any WeChat Pay public key setting is given (then the key and its id are both required)."""
    return any(get(key, None) is not None for key in PUBLIC_KEY_SETTINGS)


def wechatpay_public_keys() -> dict[str, rsa.RSAPublicKey]:
    """The configured WeChat Pay public key by the id it is named by in ``Wechatpay-Serial``.

    Empty when only platform certificates are used (those live in the database, see
    ``services.certificates``); ImproperlyConfigured when no key source is configured at all.
    """
    if not public_key_configured():
        if platform_certificates():
            return {}
        raise ImproperlyConfigured(
            f"Configure how to verify WeChat Pay: {_name('WECHATPAY_PUBLIC_KEY_ID')} with "
            f"{_name('WECHATPAY_PUBLIC_KEY_PATH')} (the WeChat Pay public key), or "
            f"{_name('PLATFORM_CERTIFICATES')} = True (platform certificates), or both."
        )
    return {wechatpay_public_key_id(): wechatpay_public_key()}


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
        """Equal for equal settings. Key objects compare by identity: they are parsed once and cached,
        and a client holding this object keeps them alive, so an ``id`` is never reused meanwhile."""
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


def client_settings() -> ClientSettings:
    public_keys = wechatpay_public_keys()
    return ClientSettings(
        mchid=mchid(),
        merchant_serial_no=merchant_serial_no(),
        merchant_private_key=merchant_private_key(),
        wechatpay_public_keys=tuple(public_keys.items()),
        # The public key id asks WeChat Pay to sign its answers with that key. With platform
        # certificates only the header is left out: WeChat Pay signs with its current certificate.
        wechatpay_serial=next(iter(public_keys), None),
        base_url=base_url(),
        timeout=timeout(),
        backup_base_url=backup_base_url(),
        platform_certificates=platform_certificates(),
        ca_bundle=ca_bundle(),
    )

"""The ``PAPAY`` settings dict: every setting declared once, as one row of the table below.

A row (:class:`Setting`) is a key, its default, the rule its value must keep, the system check a bad value
fires and one line saying what it is — and it is the accessor too: ``conf.mchid()`` reads ``PAPAY["MCHID"]``
when called (never at import, so ``override_settings`` works) and raises ``ImproperlyConfigured`` naming the
key to set. ``checks.py`` checks every row; ``tests/test_settings_table.py`` holds docs/settings.md's table
to this one. The last section reads the keys and the client's settings; ``conf_keys.py`` loads them.

To add a setting: a row here (and a rule in conf_rules.py, unless one there fits), its line in
docs/settings.md's table, and ``conf.<name>()`` where it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import conf_keys, wechatpay
from . import conf_rules as rules
from .conf_keys import ClientSettings

T = TypeVar("T")

DOCS = "docs/settings.md"
# (connect, read) seconds; WeChat Pay answers pre-sign in well under a second.
DEFAULT_TIMEOUT = (5.0, 15.0)
# WeChat Pay's merchant timeout for a deduct call is 1 minute ("商户系统超时时间为1分钟").
DEFAULT_DEDUCT_TIMEOUT = 60.0
# Age after which the stored platform certificates are due for another download.
DEFAULT_CERTIFICATE_REFRESH_INTERVAL = 12 * 3600.0
DEFAULT_APP_PRESIGN_LIMIT = (10, 3600.0)  # pre-signs a user may make the server send, per this many seconds
DEFAULT_APP_REFRESH_INTERVAL = 5.0
DEFAULT_DISPLAY_ACCOUNT = "django_papay.services.app.masked_username"


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()  # a row without a default: reading it unset raises


def _papay() -> dict[str, Any]:
    value = getattr(settings, "PAPAY", None)
    if value is None:
        raise ImproperlyConfigured(f"django_papay needs a PAPAY = {{...}} dict in your settings (see {DOCS}).")
    if not isinstance(value, dict):
        raise ImproperlyConfigured("settings.PAPAY must be a dict.")
    return value


@dataclass(frozen=True, eq=False)
class Setting(Generic[T]):
    """One key of ``PAPAY``; calling it gives the key's value, checked by ``rule``."""

    key: str
    default: Any  # NO_DEFAULT: none
    rule: Callable[[Any], T]  # the given value (or the default) → what the accessor returns; raises Invalid
    check: str  # the system check (django_papay.<check>) a malformed value fires
    doc: str  # one line: what it is; the system check's hint
    required: bool = False  # every site sets it: missing is E002

    @property
    def name(self) -> str:
        return f'settings.PAPAY["{self.key}"]'

    def given(self) -> bool:
        """Whether the site sets it (``None`` and ``""`` count as not set)."""
        return _papay().get(self.key) not in (None, "")

    def __call__(self) -> T:
        value = _papay().get(self.key)
        if value in (None, ""):
            if self.default is NO_DEFAULT:
                raise ImproperlyConfigured(f"{self.name} is required but not set.")
            value = self.default
        try:
            return self.rule(value)
        except rules.Invalid as exc:
            raise ImproperlyConfigured(f"{self.name} must be {exc}.") from exc


SETTINGS: dict[str, Setting[Any]] = {}  # the table, by key, in the order of the rows below


def setting(
    key: str, default: Any, rule: Callable[[Any], T], *, check: str = "E014", doc: str, required: bool = False
) -> Setting[T]:
    if key in SETTINGS:
        raise ValueError(f"PAPAY[{key!r}] is declared twice")
    SETTINGS[key] = row = Setting(key, default, rule, check, doc, required)
    return row


# --- the table --------------------------------------------------------------------------------------------
# One row is one setting, laid out alike (hence no formatter here).
# fmt: off

mchid = setting(
    "MCHID", NO_DEFAULT, rules.matching(r"[0-9]{1,32}", "the merchant id, digits only"),
    check="E013", required=True, doc="Your merchant id (商户号), digits only.",
)
merchant_serial_no = setting(
    "MERCHANT_SERIAL_NO", NO_DEFAULT,
    rules.matching(r"[0-9A-Fa-f]{8,64}", "the merchant API certificate serial number (hex)"),
    check="E007", required=True, doc="The serial number of your merchant API certificate (商户API证书序列号), hex.",
)
merchant_private_key_pem = setting(
    "MERCHANT_PRIVATE_KEY", None, rules.optional(rules.pem_text),
    check="E004", doc="Your merchant API private key (apiclient_key.pem, RSA-2048) as PEM text; or the _PATH.",
)
merchant_private_key_path = setting(
    "MERCHANT_PRIVATE_KEY_PATH", None, rules.optional(rules.pem_path),
    check="E004", doc="The path of your merchant API private key file (apiclient_key.pem); or the PEM text.",
)
apiv3_key = setting(
    "APIV3_KEY", NO_DEFAULT, rules.apiv3_key,
    check="E003", required=True,
    doc="The 32-character APIv3 key (商户平台 → API安全 → APIv3密钥); decrypts notifications.",
)
appid = setting(
    "APPID", "", rules.appid,
    doc="The default AppID for contracts that leave theirs blank.",
)
notify_url = setting(
    "NOTIFY_URL", NO_DEFAULT, rules.notify_url,
    check="E012", required=True,
    doc="The https:// URL WeChat Pay posts notifications to; WeChat Pay refuses plain http and a query string.",
)
refund_notify_url = setting(
    "REFUND_NOTIFY_URL", None, rules.optional(rules.notify_url),
    check="E012", doc="The https:// URL refunds' REFUND.* notifications go to; None: NOTIFY_URL (the one notify view).",
)
wechatpay_public_key_pem = setting(
    "WECHATPAY_PUBLIC_KEY", None, rules.optional(rules.pem_text),
    check="E009", doc="The WeChat Pay public key (微信支付公钥, pub_key.pem) as PEM text; or the _PATH.",
)
wechatpay_public_key_path = setting(
    "WECHATPAY_PUBLIC_KEY_PATH", None, rules.optional(rules.pem_path),
    check="E009", doc="The path of the WeChat Pay public key file (pub_key.pem); or the PEM text.",
)
wechatpay_public_key_id = setting(
    "WECHATPAY_PUBLIC_KEY_ID", NO_DEFAULT,
    rules.matching(
        rf"{wechatpay.PUBLIC_KEY_ID_PREFIX}[0-9A-Za-z_]+",
        f'the WeChat Pay public key id ("{wechatpay.PUBLIC_KEY_ID_PREFIX}…")',
    ),
    check="E008", doc=f"The WeChat Pay public key's id, {wechatpay.PUBLIC_KEY_ID_PREFIX}…, sent as Wechatpay-Serial.",
)
platform_certificates = setting(
    "PLATFORM_CERTIFICATES", False, rules.switch,
    doc="True: also trust WeChat Pay's platform certificates (平台证书), downloaded and stored in the database.",
)
certificate_refresh_interval = setting(
    "CERTIFICATE_REFRESH_INTERVAL", DEFAULT_CERTIFICATE_REFRESH_INTERVAL, rules.seconds(),
    doc="Seconds after which the stored platform certificates are downloaded again.",
)
base_url = setting(
    "BASE_URL", wechatpay.API_URL, rules.host_url(wechatpay.API_URL),
    doc="Where requests go: WeChat Pay's API host, or the sandbox in tests and the demo.",
)
backup_base_url = setting(
    "BACKUP_BASE_URL", None, rules.optional(rules.host_url(wechatpay.BACKUP_API_URL)),
    doc=f"Where a request goes when the main host cannot be reached (WeChat Pay's: {wechatpay.BACKUP_API_URL}).",
)
timeout = setting(
    "TIMEOUT", DEFAULT_TIMEOUT, rules.timeout,
    doc="Seconds: one number, or (connect, read).",
)
return_app = setting(
    "RETURN_APP", None, rules.switch_or_none,
    doc="The return_app sent with APP pre-signs (True: iOS returns to your App); None leaves it out.",
)
deduct_timeout = setting(
    "DEDUCT_TIMEOUT", DEFAULT_DEDUCT_TIMEOUT, rules.seconds(),
    doc="Seconds a deduct call waits for WeChat Pay's answer (its documented window); TIMEOUT does not apply.",
)
combine_appid = setting(
    "COMBINE_APPID", "", rules.appid,
    doc="The platform's AppID sent as a deduction's combine_appid; blank: the contract's AppID.",
)
extra_appids = setting(
    "EXTRA_APPIDS", (), rules.appids,
    doc="AppIDs besides APPID and COMBINE_APPID that contracts signed through another channel may carry.",
)
bulk_concurrency = setting(
    "BULK_CONCURRENCY", 4, rules.whole_number("a whole number from 1 to 32", 1, 32),
    doc="WeChat Pay calls a bulk action (or papay_sync) keeps in flight at once, 1–32.",
)
tasks_enabled = setting(
    "TASKS", False, rules.switch,
    doc="True: bulk work (admin actions, commands) is enqueued as Django Tasks instead of run in the request.",
)
max_calls_per_second = setting(
    "MAX_CALLS_PER_SECOND", None, rules.optional(rules.whole_number("a whole number of at least 1, or None", 1)),
    doc="WeChat Pay calls per second all task workers on all hosts share; None: no limit.",
)
ca_bundle = setting(
    "CA_BUNDLE", None, rules.optional(rules.existing_path),
    doc="A PEM file (or folder) of the CAs trusted for BASE_URL and BACKUP_BASE_URL; None: requests' default trust.",
)
app_plan_ids = setting(
    "APP_PLAN_IDS", NO_DEFAULT, rules.plan_ids,
    doc="The plan ids (委托代扣协议模板) users may sign from the App; needed by the App's endpoints only.",
)
app_presign_limit = setting(
    "APP_PRESIGN_LIMIT", DEFAULT_APP_PRESIGN_LIMIT, rules.presign_limit,
    doc="(count, seconds): at most count pre-signs sent for one user within any seconds.",
)
app_refresh_interval = setting(
    "APP_REFRESH_INTERVAL", DEFAULT_APP_REFRESH_INTERVAL, rules.seconds(zero=True),
    doc="Seconds between two WeChat Pay queries one user's ?refresh=1 may cause for one contract.",
)
display_account = setting(
    "DISPLAY_ACCOUNT", DEFAULT_DISPLAY_ACCOUNT, cast(Callable[[Any], Callable[[Any], str]], rules.function),
    doc="A function (or its dotted path) of a user giving the contract_display_account of their App contracts.",
)
app_authenticate = setting(
    "APP_AUTHENTICATE", None, rules.optional(rules.function),
    doc="A function (or its dotted path) of a request returning the user its App token names, or None.",
)
# fmt: on


def appids() -> frozenset[str]:
    """Every AppID configured for this site: ``APPID``, ``COMBINE_APPID`` and ``EXTRA_APPIDS``."""
    return frozenset(filter(None, (appid(), combine_appid(), *extra_appids())))


# --- keys and the client's settings (conf_keys.py loads them, once) ---------------------------------------

# Settings that make up the WeChat Pay public key (微信支付公钥) key source.
PUBLIC_KEY_SETTINGS = (wechatpay_public_key_pem, wechatpay_public_key_path, wechatpay_public_key_id)


def merchant_private_key() -> rsa.RSAPrivateKey:
    """The merchant's API private key, from ``MERCHANT_PRIVATE_KEY`` or ``MERCHANT_PRIVATE_KEY_PATH``."""
    return conf_keys.load_merchant_private_key(merchant_private_key_pem, merchant_private_key_path)


def wechatpay_public_key() -> rsa.RSAPublicKey:
    """The WeChat Pay public key, from ``WECHATPAY_PUBLIC_KEY`` or ``WECHATPAY_PUBLIC_KEY_PATH``."""
    return conf_keys.load_wechatpay_public_key(wechatpay_public_key_pem, wechatpay_public_key_path)


def public_key_configured() -> bool:
    """True when any WeChat Pay public key setting is given (then the key and its id are both required)."""
    return any(row.given() for row in PUBLIC_KEY_SETTINGS)


def wechatpay_public_keys() -> dict[str, rsa.RSAPublicKey]:
    """The configured WeChat Pay public key by the id it is named by in ``Wechatpay-Serial``.

    Empty when only platform certificates are used (those live in the database, see
    ``services.certificates``); ImproperlyConfigured when no key source is configured at all.
    """
    if not public_key_configured():
        if platform_certificates():
            return {}
        raise ImproperlyConfigured(
            f"Configure how to verify WeChat Pay: {wechatpay_public_key_id.name} with "
            f"{wechatpay_public_key_path.name} (the WeChat Pay public key), or "
            f"{platform_certificates.name} = True (platform certificates), or both."
        )
    return {wechatpay_public_key_id(): wechatpay_public_key()}


def client_settings() -> ClientSettings:
    """Everything the APIv3 client needs, read and validated in one go."""
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

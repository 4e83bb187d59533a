"""System checks for ``settings.PAPAY``: ``manage.py check`` finds a wrong key before WeChat Pay does.

Settings and key files only — no network, no database. Registered by ``AppConfig.ready``.

| id | what |
|---|---|
| E001 | ``PAPAY`` missing, empty, or not a dict |
| E002 | a required setting missing |
| E003 | ``APIV3_KEY`` not 32 bytes |
| E004 / E005 / E006 | merchant private key unreadable / not RSA / not 2048 bits |
| E007 | ``MERCHANT_SERIAL_NO`` malformed |
| E008 / E009 | ``WECHATPAY_PUBLIC_KEY_ID`` not ``PUB_KEY_ID_…`` / the public key unreadable |
| E010 | no WeChat Pay key source (public key or platform certificates) |
| E011 | the public key without its id, or the id without the key |
| E012 | ``NOTIFY_URL`` not https, or with a query string |
| E013 | ``MCHID`` malformed |
| E014 | another setting malformed (URLs, TIMEOUT, switches, CA_BUNDLE, the deduction, task and App settings…) |
| W001 | ``BASE_URL`` or ``BACKUP_BASE_URL`` not https (loopback excepted) |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured

from . import conf, crypto, wechatpay
from .loopback import is_loopback_host

MERCHANT_KEY_BITS = 2048  # WeChat Pay issues merchant API keys as RSA-2048
REQUIRED = ("MCHID", "MERCHANT_SERIAL_NO", "APIV3_KEY", "NOTIFY_URL")
README = "See the Settings table in django-papay's README."


def _error(id_: int, message: str, hint: str) -> Error:
    return Error(message, hint=hint, id=f"django_papay.E{id_:03d}")


def _given(papay: dict[str, Any], key: str) -> bool:
    return papay.get(key) not in (None, "")


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    papay = getattr(settings, "PAPAY", None)
    if not isinstance(papay, dict) or not papay:
        return [
            _error(
                1,
                "settings.PAPAY is missing, empty or not a dict.",
                "Add PAPAY = {...} with your merchant id, keys and NOTIFY_URL. " + README,
            )
        ]
    messages: list[CheckMessage] = []
    for key in REQUIRED:
        if not _given(papay, key):
            messages.append(_error(2, f'settings.PAPAY["{key}"] is required but not set.', README))
    if not (_given(papay, "MERCHANT_PRIVATE_KEY") or _given(papay, "MERCHANT_PRIVATE_KEY_PATH")):
        messages.append(
            _error(
                2,
                'settings.PAPAY has neither "MERCHANT_PRIVATE_KEY" nor "MERCHANT_PRIVATE_KEY_PATH".',
                "Point MERCHANT_PRIVATE_KEY_PATH at your merchant API key (apiclient_key.pem).",
            )
        )
    formats: list[tuple[str, Callable[[], Any], int, str]] = [
        ("MCHID", conf.mchid, 13, "Your merchant id (商户号) is digits only."),
        (
            "MERCHANT_SERIAL_NO",
            conf.merchant_serial_no,
            7,
            "The serial number of your merchant API certificate, hex (商户API证书序列号).",
        ),
        ("APIV3_KEY", conf.apiv3_key, 3, "The APIv3 key is exactly 32 characters (商户平台 → API安全 → APIv3密钥)."),
        ("NOTIFY_URL", conf.notify_url, 12, "WeChat Pay calls https:// URLs only, and none with a query string."),
    ]
    for key, accessor, id_, hint in formats:
        if _given(papay, key):
            messages += _accessor_errors(accessor, id_, hint)
    messages += _merchant_key(papay)
    messages += _wechatpay_keys(papay)
    for accessor in (
        conf.base_url,
        conf.backup_base_url,
        conf.timeout,
        conf.appid,
        conf.combine_appid,
        conf.extra_appids,
        conf.return_app,
        conf.bulk_concurrency,
        conf.platform_certificates,
        conf.certificate_refresh_interval,
        conf.ca_bundle,
        conf.deduct_timeout,
        conf.tasks_enabled,
        conf.max_calls_per_second,
        conf.app_presign_limit,
        conf.app_refresh_interval,
        conf.display_account,
        conf.app_authenticate,
    ):
        messages += _accessor_errors(accessor, 14, README)
    if _given(papay, "APP_PLAN_IDS"):  # only a site that offers the App's endpoints needs it
        messages += _accessor_errors(conf.app_plan_ids, 14, README)
    messages += _plain_http(papay)
    return messages


def _accessor_errors(accessor: Callable[[], Any], id_: int, hint: str) -> list[CheckMessage]:
    try:
        accessor()
    except ImproperlyConfigured as exc:
        return [_error(id_, str(exc), hint)]
    return []


def _pem(papay: dict[str, Any], key: str) -> tuple[str, bytes | str] | None:
    """``(setting, PEM)`` from ``key`` or ``key_PATH``; raises OSError for an unreadable file."""
    if _given(papay, key):
        return key, papay[key]
    if _given(papay, f"{key}_PATH"):
        return f"{key}_PATH", crypto.read_key_file(papay[f"{key}_PATH"])
    return None


def _merchant_key(papay: dict[str, Any]) -> list[CheckMessage]:
    try:
        found = _pem(papay, "MERCHANT_PRIVATE_KEY")
    except (OSError, TypeError) as exc:
        return [
            _error(
                4,
                f'settings.PAPAY["MERCHANT_PRIVATE_KEY_PATH"] cannot be read: {exc}.',
                "Check the path and that this process may read the file.",
            )
        ]
    if found is None:
        return []  # reported as missing above
    setting, pem = found
    name = f'settings.PAPAY["{setting}"]'
    try:
        key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError):
        return [
            _error(
                4,
                f"{name} is not a readable, unencrypted PEM private key.",
                "Use apiclient_key.pem from the merchant platform's API certificate download.",
            )
        ]
    if not isinstance(key, rsa.RSAPrivateKey):
        return [_error(5, f"{name} is not an RSA key.", "WeChat Pay's merchant API keys are RSA.")]
    if key.key_size != MERCHANT_KEY_BITS:
        return [
            _error(
                6,
                f"{name} is RSA-{key.key_size}, not RSA-{MERCHANT_KEY_BITS}.",
                f"WeChat Pay signs with RSA-2048 merchant keys ({wechatpay.SIGNATURE_TYPE}).",
            )
        ]
    return []


def _wechatpay_keys(papay: dict[str, Any]) -> list[CheckMessage]:
    has_id = _given(papay, "WECHATPAY_PUBLIC_KEY_ID")
    has_key = _given(papay, "WECHATPAY_PUBLIC_KEY") or _given(papay, "WECHATPAY_PUBLIC_KEY_PATH")
    certificates = papay.get("PLATFORM_CERTIFICATES") is True
    if not (has_id or has_key or certificates):
        return [
            _error(
                10,
                "No WeChat Pay key source is configured, so no answer or notification can be verified.",
                "Set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_PATH (微信支付公钥), or "
                '"PLATFORM_CERTIFICATES": True (平台证书), or both while moving to the public key.',
            )
        ]
    messages: list[CheckMessage] = []
    if has_id != has_key:
        missing = "WECHATPAY_PUBLIC_KEY_PATH (or WECHATPAY_PUBLIC_KEY)" if has_id else "WECHATPAY_PUBLIC_KEY_ID"
        messages.append(
            _error(
                11,
                f'The WeChat Pay public key is configured without settings.PAPAY["{missing}"].',
                f"The key and its id ({wechatpay.PUBLIC_KEY_ID_PREFIX}…) go together; both are on "
                "the merchant platform under API安全 → 微信支付公钥.",
            )
        )
    if has_id:
        messages += _accessor_errors(
            conf.wechatpay_public_key_id,
            8,
            f'The WeChat Pay public key id starts with "{wechatpay.PUBLIC_KEY_ID_PREFIX}".',
        )
    if has_key:
        messages += _public_key(papay)
    return messages


def _public_key(papay: dict[str, Any]) -> list[CheckMessage]:
    try:
        setting, pem = _pem(papay, "WECHATPAY_PUBLIC_KEY") or ("", "")
        crypto.load_public_key(pem)
    except (OSError, TypeError) as exc:
        return [
            _error(
                9,
                f'settings.PAPAY["WECHATPAY_PUBLIC_KEY_PATH"] cannot be read: {exc}.',
                "Check the path and that this process may read the file.",
            )
        ]
    except crypto.KeyLoadError as exc:
        return [
            _error(
                9,
                f'settings.PAPAY["{setting}"] is not the WeChat Pay public key: {exc}.',
                "Use pub_key.pem downloaded with the public key id (微信支付公钥), an RSA public key.",
            )
        ]
    return []


def _plain_http(papay: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in ("BASE_URL", "BACKUP_BASE_URL"):
        value = papay.get(key)
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts and parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            messages.append(
                Warning(
                    f'settings.PAPAY["{key}"] is plain http to {parts.hostname}: '
                    "requests and answers travel unencrypted.",
                    hint=f"Use {conf.DEFAULT_BASE_URL} (backup {conf.WECHATPAY_BACKUP_BASE_URL}); plain http is for "
                    "the loopback sandbox only.",
                    id="django_papay.W001",
                )
            )
    return messages

"""System checks for ``settings.PAPAY``: ``manage.py check`` finds a wrong key before WeChat Pay does.

Settings and key files only — no network, no database. Registered by ``AppConfig.ready``. The ids and when
each fires are in docs/settings.md ("System checks").

Every row of the settings table (``conf.SETTINGS``) is checked by its own accessor, so a check refuses exactly
what a request would, in the same words: a required row missing is E002, a given row that breaks its rule
fires the row's check, and its one-line doc is the hint. The keys are loaded through conf_keys.py, as for a
request. What is left here are the rules across rows: the private key's pair, the WeChat Pay key source
(E010, E011), plain http (W001), and the App's endpoints served without ``APP_PLAN_IDS`` (W002).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver

from . import conf, conf_keys, wechatpay
from .loopback import is_loopback_host

MERCHANT_KEY_BITS = 2048  # WeChat Pay issues merchant API keys as RSA-2048
SEE = f"See {conf.DOCS} in django-papay."
# Checked by loading the key (below) rather than by their rule alone.
KEY_ROWS = (
    conf.merchant_private_key_pem,
    conf.merchant_private_key_path,
    conf.wechatpay_public_key_pem,
    conf.wechatpay_public_key_path,
)
READABLE_HINT = "Check the path and that this process may read the file."


def _error(check: str, message: str, hint: str) -> Error:
    return Error(message, hint=hint, id=f"django_papay.{check}")


def _hint(row: conf.Setting[Any]) -> str:
    return f"{row.doc} {SEE}"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    papay = getattr(settings, "PAPAY", None)
    if not isinstance(papay, dict) or not papay:
        return [
            _error(
                "E001",
                "settings.PAPAY is missing, empty or not a dict.",
                "Add PAPAY = {...} with your merchant id, keys and NOTIFY_URL. " + SEE,
            )
        ]
    messages: list[CheckMessage] = []
    for row in conf.SETTINGS.values():
        if row.required and not row.given():
            messages.append(_error("E002", f"{row.name} is required but not set.", _hint(row)))
        elif row.given() and row not in KEY_ROWS:
            messages += _accessor_errors(row, row.check, _hint(row))
    messages += _merchant_key()
    messages += _wechatpay_keys()
    messages += _plain_http()
    messages += _app_endpoints_without_plans()
    return messages


def _accessor_errors(accessor: conf.Setting[Any], check: str, hint: str) -> list[CheckMessage]:
    try:
        accessor()
    except ImproperlyConfigured as exc:
        return [_error(check, str(exc), hint)]
    return []


def _merchant_key() -> list[CheckMessage]:
    text, path = conf.merchant_private_key_pem, conf.merchant_private_key_path
    if not (text.given() or path.given()):
        return [
            _error(
                "E002",
                f'settings.PAPAY has neither "{text.key}" nor "{path.key}".',
                f"Point {path.key} at your merchant API key (apiclient_key.pem).",
            )
        ]
    try:
        key = conf.merchant_private_key()
    except conf_keys.KeySettingError as exc:
        if exc.reason == "not_rsa":
            return [_error("E005", str(exc), "WeChat Pay's merchant API keys are RSA.")]
        hint = (
            READABLE_HINT
            if exc.reason == "unreadable"
            else "Use apiclient_key.pem from the merchant platform's API certificate download."
        )
        return [_error("E004", str(exc), hint)]
    except ImproperlyConfigured as exc:  # the setting is not text, or not a path
        return [_error("E004", str(exc), _hint(conf_keys.source(text, path)))]
    if key.key_size != MERCHANT_KEY_BITS:
        return [
            _error(
                "E006",
                f"{conf_keys.source(text, path).name} is RSA-{key.key_size}, not RSA-{MERCHANT_KEY_BITS}.",
                f"WeChat Pay signs with RSA-2048 merchant keys ({wechatpay.SIGNATURE_TYPE}).",
            )
        ]
    return []


def _switched_on(row: conf.Setting[Any]) -> bool:
    try:
        return row() is True
    except ImproperlyConfigured:
        return False  # reported by the row's own check


def _wechatpay_keys() -> list[CheckMessage]:
    key_id = conf.wechatpay_public_key_id
    has_id = key_id.given()
    has_key = conf.wechatpay_public_key_pem.given() or conf.wechatpay_public_key_path.given()
    if not (has_id or has_key or _switched_on(conf.platform_certificates)):
        return [
            _error(
                "E010",
                "No WeChat Pay key source is configured, so no answer or notification can be verified.",
                "Set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_PATH (微信支付公钥), or "
                '"PLATFORM_CERTIFICATES": True (平台证书), or both while moving to the public key.',
            )
        ]
    messages: list[CheckMessage] = []
    if has_id != has_key:
        missing = "WECHATPAY_PUBLIC_KEY_PATH (or WECHATPAY_PUBLIC_KEY)" if has_id else key_id.key
        messages.append(
            _error(
                "E011",
                f'The WeChat Pay public key is configured without settings.PAPAY["{missing}"].',
                f"The key and its id ({wechatpay.PUBLIC_KEY_ID_PREFIX}…) go together; both are on "
                "the merchant platform under API安全 → 微信支付公钥.",
            )
        )
    if has_key:
        messages += _public_key()
    return messages


def _public_key() -> list[CheckMessage]:
    text, path = conf.wechatpay_public_key_pem, conf.wechatpay_public_key_path
    try:
        conf.wechatpay_public_key()
    except conf_keys.KeySettingError as exc:
        hint = (
            READABLE_HINT
            if exc.reason == "unreadable"
            else "Use pub_key.pem downloaded with the public key id (微信支付公钥), an RSA public key."
        )
        return [_error("E009", str(exc), hint)]
    except ImproperlyConfigured as exc:  # the setting is not text, or not a path
        return [_error("E009", str(exc), _hint(conf_keys.source(text, path)))]
    return []


def _plain_http() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for row in (conf.base_url, conf.backup_base_url):
        try:
            url = row() if row.given() else None
        except ImproperlyConfigured:
            continue  # reported by the row's own check
        parts = urlsplit(url) if url else None
        if parts and parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            messages.append(
                Warning(
                    f"{row.name} is plain http to {parts.hostname}: requests and answers travel unencrypted.",
                    hint=f"Use {wechatpay.API_URL} (backup {wechatpay.BACKUP_API_URL}); plain http is for "
                    "the loopback sandbox only.",
                    id="django_papay.W001",
                )
            )
    return messages


# The App's endpoints, known by their views' module: this layer does not import the edges.
APP_API_MODULE = "django_papay.app_api"


def _serves_app_endpoints(patterns: list[URLPattern | URLResolver]) -> bool:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if _serves_app_endpoints(pattern.url_patterns):
                return True
        elif getattr(pattern.callback, "__module__", "") == APP_API_MODULE:
            return True
    return False


def _app_endpoints_without_plans() -> list[CheckMessage]:
    """``include("django_papay.urls")`` serves the App's endpoints too; without APP_PLAN_IDS each answers 500."""
    if conf.app_plan_ids.given():
        return []
    try:
        served = _serves_app_endpoints(get_resolver().url_patterns)
    except Exception:  # a broken URLconf is reported by Django's own checks
        return []
    if not served:
        return []
    return [
        Warning(
            f'The App\'s endpoints are served (include("django_papay.urls")) but {conf.app_plan_ids.name} is not '
            "set: every call to them answers 500 NOT_CONFIGURED.",
            hint="Set APP_PLAN_IDS to the plan ids users may sign from the App, or, without an App, route only "
            'the notify view: path("papay/notify/", django_papay.views.notify, name="notify"). ' + SEE,
            id="django_papay.W002",
        )
    ]

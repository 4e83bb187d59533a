"""System checks: each fires with its id and a hint on a bad setting, and stays silent on good ones.

These tests have no database access (pytest-django would refuse it) and point at no live host.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import checks

from django_papay import crypto
from django_papay.checks import check_settings

from .helpers import papay_settings

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "example_project"
GARBAGE_PEM = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"


def _ec_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def good(settings, keys):
    settings.PAPAY = {**papay_settings(keys, "https://api.mch.weixin.qq.com"), "APP_PLAN_IDS": [12535]}
    return settings.PAPAY


def ids(messages) -> list[str]:
    return sorted(message.id for message in messages)


def test_good_settings_pass_every_check(good):
    assert check_settings() == []


def test_good_settings_with_files_certificates_and_backup_host_pass(good, keys, tmp_path):
    (tmp_path / "apiclient_key.pem").write_text(keys.merchant_pem)
    (tmp_path / "pub_key.pem").write_text(keys.wechatpay_public_pem)
    del good["MERCHANT_PRIVATE_KEY"], good["WECHATPAY_PUBLIC_KEY"]
    good.update(
        MERCHANT_PRIVATE_KEY_PATH=str(tmp_path / "apiclient_key.pem"),
        WECHATPAY_PUBLIC_KEY_PATH=str(tmp_path / "pub_key.pem"),
        PLATFORM_CERTIFICATES=True,
        BACKUP_BASE_URL="https://api2.mch.weixin.qq.com",
        CERTIFICATE_REFRESH_INTERVAL=3600,
    )
    assert check_settings() == []


def test_certificates_alone_are_a_key_source(good):
    del good["WECHATPAY_PUBLIC_KEY"], good["WECHATPAY_PUBLIC_KEY_ID"]
    good["PLATFORM_CERTIFICATES"] = True
    assert check_settings() == []


@pytest.mark.parametrize("host", ["http://127.0.0.1:8765", "http://localhost:8000", "http://[::1]:8765"])
def test_plain_http_to_loopback_is_fine(good, host):
    good["BASE_URL"] = host
    assert check_settings() == []


@pytest.mark.parametrize("papay", [None, {}, "not a dict"])
def test_missing_or_empty_papay_is_e001(settings, papay):
    settings.PAPAY = papay
    assert ids(check_settings()) == ["django_papay.E001"]


@pytest.mark.parametrize("key", ["MCHID", "MERCHANT_SERIAL_NO", "APIV3_KEY", "NOTIFY_URL", "MERCHANT_PRIVATE_KEY"])
def test_missing_required_setting_is_e002(good, key):
    del good[key]
    assert ids(check_settings()) == ["django_papay.E002"]


def _rsa_1024_pem() -> str:
    return crypto.private_key_pem(crypto.generate_private_key(1024))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"APIV3_KEY": "too-short"}, "E003"),
        ({"APIV3_KEY": "密" * 32}, "E003"),  # 32 characters but 96 bytes
        ({"MERCHANT_PRIVATE_KEY": GARBAGE_PEM}, "E004"),
        ({"MERCHANT_PRIVATE_KEY": None, "MERCHANT_PRIVATE_KEY_PATH": "/nonexistent/apiclient_key.pem"}, "E004"),
        ({"MERCHANT_PRIVATE_KEY": _ec_private_pem}, "E005"),
        ({"MERCHANT_PRIVATE_KEY": _rsa_1024_pem}, "E006"),
        ({"MERCHANT_SERIAL_NO": "not-a-serial!"}, "E007"),
        ({"WECHATPAY_PUBLIC_KEY_ID": "0119000001092026112600000000000001"}, "E008"),
        ({"WECHATPAY_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}, "E009"),
        ({"WECHATPAY_PUBLIC_KEY": None, "WECHATPAY_PUBLIC_KEY_PATH": "/nonexistent/pub_key.pem"}, "E009"),
        ({"WECHATPAY_PUBLIC_KEY": None, "WECHATPAY_PUBLIC_KEY_ID": None}, "E010"),
        ({"WECHATPAY_PUBLIC_KEY_ID": None}, "E011"),
        ({"WECHATPAY_PUBLIC_KEY": None, "PLATFORM_CERTIFICATES": True}, "E011"),
        ({"NOTIFY_URL": "http://merchant.example/papay/notify/"}, "E012"),
        ({"NOTIFY_URL": "https://merchant.example/papay/notify/?shop=1"}, "E012"),
        ({"REFUND_NOTIFY_URL": "http://merchant.example/papay/refunds/"}, "E012"),
        ({"MCHID": "1900-0001"}, "E013"),
        ({"BACKUP_BASE_URL": "api2.mch.weixin.qq.com"}, "E014"),
        ({"TIMEOUT": 0}, "E014"),
        ({"BULK_CONCURRENCY": 0}, "E014"),
        ({"PLATFORM_CERTIFICATES": "yes"}, "E014"),
        ({"CERTIFICATE_REFRESH_INTERVAL": -1}, "E014"),
        ({"DEDUCT_TIMEOUT": 0}, "E014"),
        ({"TASKS": "yes"}, "E014"),
        ({"MAX_CALLS_PER_SECOND": -5}, "E014"),
        ({"APP_PLAN_IDS": [0]}, "E014"),
        ({"APP_PRESIGN_LIMIT": 10}, "E014"),
        ({"APP_REFRESH_INTERVAL": -1}, "E014"),
        ({"DISPLAY_ACCOUNT": "shop.no_such_module.account"}, "E014"),
        ({"APP_AUTHENTICATE": "shop.no_such_module.user"}, "E014"),
        ({"BASE_URL": "http://api.mch.weixin.qq.com"}, "W001"),
        ({"BACKUP_BASE_URL": "http://api2.mch.weixin.qq.com"}, "W001"),
    ],
)
def test_bad_setting_fires_its_check_with_a_hint(good, changes, expected):
    for key, value in changes.items():
        value = value() if callable(value) else value
        if value is None:
            good.pop(key, None)
        else:
            good[key] = value
    messages = check_settings()
    assert ids(messages) == [f"django_papay.{expected}"]
    assert all(message.hint for message in messages)
    assert (messages[0].level == checks.WARNING) == expected.startswith("W")


def test_the_app_endpoints_routed_without_plan_ids_warn(good):
    del good["APP_PLAN_IDS"]  # tests/urls.py includes django_papay.urls: the App's endpoints too
    (message,) = check_settings()
    assert (message.id, message.level) == ("django_papay.W002", checks.WARNING)
    assert "APP_PLAN_IDS" in message.msg and "views.notify" in message.hint


def test_only_the_notify_view_routed_needs_no_plan_ids(good, settings):
    del good["APP_PLAN_IDS"]
    settings.ROOT_URLCONF = "tests.urls_notify_only"
    assert check_settings() == []


def test_a_secret_is_never_echoed(good):
    good["MERCHANT_PRIVATE_KEY"] = GARBAGE_PEM
    good["APIV3_KEY"] = "a-leaked-apiv3-key"
    text = " ".join(f"{message.msg} {message.hint}" for message in check_settings())
    assert "c2VjcmV0" not in text and "a-leaked-apiv3-key" not in text


@pytest.mark.django_db  # Django 6 runs the database-tagged checks (W020) too
def test_checks_are_registered_with_django(good):
    good["MCHID"] = "bad"
    found = checks.run_checks(tags=["django_papay"])
    assert ids(found) == ["django_papay.E013"]


def test_example_project_passes_manage_py_check():
    environment = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=EXAMPLE_PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout

"""Fixtures: keys generated per run, a loopback WeChat Pay sandbox, and PAPAY settings pointing at it."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto
from django_papay.sandbox import Sandbox

MCHID = "1900000109"
MERCHANT_SERIAL_NO = "3775B6A45ACD588826D15E583A95F5DD21FE7D2B"
WECHATPAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026112600000000000001"
APPID = "wxd678efh567hg6787"
NOTIFY_URL = "https://merchant.example/papay/notify/"


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey
    wechatpay: rsa.RSAPrivateKey
    apiv3_key: str

    @property
    def merchant_pem(self) -> str:
        return crypto.private_key_pem(self.merchant)

    @property
    def wechatpay_public_pem(self) -> str:
        return crypto.public_key_pem(self.wechatpay.public_key())


@pytest.fixture(scope="session")
def keys() -> Keys:
    alphabet = string.ascii_letters + string.digits
    return Keys(
        merchant=crypto.generate_private_key(),
        wechatpay=crypto.generate_private_key(),
        apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
    )


def make_sandbox(keys: Keys, **changes) -> Sandbox:
    """A sandbox (not started) for this run's merchant; ``changes`` override any argument."""
    arguments = {
        "mchid": MCHID,
        "merchant_serial_no": MERCHANT_SERIAL_NO,
        "merchant_public_key": keys.merchant.public_key(),
        "wechatpay_private_key": keys.wechatpay,
        "wechatpay_public_key_id": WECHATPAY_PUBLIC_KEY_ID,
        "apiv3_key": keys.apiv3_key,
    }
    return Sandbox(**{**arguments, **changes})


@pytest.fixture(scope="session")
def sandbox_server(keys: Keys):
    with make_sandbox(keys) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The shared sandbox, with no recorded requests and no pending faults."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


def papay_settings(keys: Keys, base_url: str, **overrides) -> dict:
    return {
        "MCHID": MCHID,
        "MERCHANT_SERIAL_NO": MERCHANT_SERIAL_NO,
        "MERCHANT_PRIVATE_KEY": keys.merchant_pem,
        "APIV3_KEY": keys.apiv3_key,
        "APPID": APPID,
        "NOTIFY_URL": NOTIFY_URL,
        "WECHATPAY_PUBLIC_KEY": keys.wechatpay_public_pem,
        "WECHATPAY_PUBLIC_KEY_ID": WECHATPAY_PUBLIC_KEY_ID,
        "BASE_URL": base_url,
        "TIMEOUT": (2.0, 2.0),
        **overrides,
    }


@pytest.fixture
def papay(settings, keys: Keys, sandbox: Sandbox) -> dict:
    """Configure PAPAY for the sandbox; tests change ``settings.PAPAY`` further as they need."""
    settings.PAPAY = papay_settings(keys, sandbox.url)
    return settings.PAPAY


def deliver(notification, client=None, **extra_headers):
    """POST a notification to the notify view exactly as WeChat Pay sends it: the same bytes and headers,
    through a CSRF-enforcing test client. ``extra_headers`` replace or add headers (forgeries)."""
    from django.test import Client
    from django.urls import reverse

    headers = {k: v for k, v in notification.headers.items() if k.lower() != "content-type"}
    return (client or Client(enforce_csrf_checks=True)).post(
        reverse("django_papay:notify"), data=notification.body, content_type="application/json",
        headers={**headers, **extra_headers},
    )

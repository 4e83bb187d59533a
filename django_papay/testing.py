"""A pytest plugin for a site's own tests: a running WeChat Pay sandbox, and ``PAPAY`` pointing at it.

Opt in with one line, in the conftest.py at the root of your tests (or ``-p django_papay.testing`` on the
command line, or in ``addopts``)::

    pytest_plugins = ["django_papay.testing"]

    def test_a_signed_contract_is_charged(papay_sandbox, db):
        contract = Contract.objects.create(plan_id=12535, contract_display_account="138****8888")
        services.presign(contract)
        papay_sandbox.sign_contract(contract.out_contract_code, drop=True)  # the user signs in WeChat
        services.query(contract)  # no notify view in this test: ask WeChat Pay instead
        deduction = services.deduct(contract, [{"sub_mchid": "1900000201", "description": "fee", "amount": 100}])
        assert deduction.status == Deduction.Status.SUCCEEDED

Fixtures:

- ``papay_sandbox``: the session's sandbox (started once, on made-up keys), reset for each test, with
  ``settings.PAPAY`` pointing at it for the test: your own ``PAPAY`` keys (``APPID``, ``APP_PLAN_IDS``,
  ``TASKS``…) are kept, the keys and hosts replaced by the sandbox's.
- ``papay_live_sandbox``: the same, and the sandbox delivers its notifications to pytest-django's
  ``live_server`` (your real notify view), as WeChat Pay would through your TLS proxy.
- ``papay_sandbox_keys``: the session's ``DemoKeys``, in a temporary folder.

It imports pytest and the sandbox, so nothing in the package imports it; docs/testing.md describes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import override_settings

from .sandbox import DemoKeys, Sandbox, ensure_demo_keys

DEFAULT_NOTIFY_URL = "https://papay.test/papay/notify/"
DEFAULT_APPID = "wxd678efh567hg6787"
# The site's own settings that would point past the sandbox, or hold other keys: replaced or dropped.
REPLACED = (
    "MCHID",
    "MERCHANT_SERIAL_NO",
    "MERCHANT_PRIVATE_KEY",
    "MERCHANT_PRIVATE_KEY_PATH",
    "APIV3_KEY",
    "WECHATPAY_PUBLIC_KEY",
    "WECHATPAY_PUBLIC_KEY_PATH",
    "WECHATPAY_PUBLIC_KEY_ID",
    "PLATFORM_CERTIFICATES",
    "BASE_URL",
    "BACKUP_BASE_URL",
    "CA_BUNDLE",
)


def sandbox_papay_settings(keys: DemoKeys, sandbox: Sandbox, site: dict[str, Any] | None = None) -> dict[str, Any]:
    """The site's ``PAPAY`` (``site``) with the keys and hosts of ``sandbox`` in place of its own."""
    kept = {key: value for key, value in (site or {}).items() if key not in REPLACED}
    notify_url = kept.pop("NOTIFY_URL", None) or DEFAULT_NOTIFY_URL
    appid = kept.pop("APPID", None) or DEFAULT_APPID
    return keys.papay_settings(base_url=sandbox.url, notify_url=notify_url, appid=appid, **kept)


@pytest.fixture(scope="session")
def papay_sandbox_keys(tmp_path_factory: pytest.TempPathFactory) -> DemoKeys:
    """Made-up merchant and WeChat Pay keys for this test session, in a temporary folder."""
    return ensure_demo_keys(tmp_path_factory.mktemp("papay-sandbox-keys"))


@pytest.fixture(scope="session")
def papay_sandbox_server(papay_sandbox_keys: DemoKeys) -> Iterator[Sandbox]:
    """The sandbox, on a free loopback port, for the whole session."""
    with papay_sandbox_keys.sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def papay_sandbox(papay_sandbox_server: Sandbox, papay_sandbox_keys: DemoKeys) -> Iterator[Sandbox]:
    """The session's sandbox, reset (no contracts, requests or queued faults), with ``PAPAY`` pointing at it."""
    papay_sandbox_server.reset()
    papay_sandbox_server.notify_rewrite = {}  # reset() keeps it: the last test's live server is gone
    site = getattr(settings, "PAPAY", None)
    with override_settings(
        PAPAY=sandbox_papay_settings(papay_sandbox_keys, papay_sandbox_server, site if isinstance(site, dict) else None)
    ):
        yield papay_sandbox_server
    papay_sandbox_server.reset()


@pytest.fixture
def papay_live_sandbox(papay_sandbox: Sandbox, request: pytest.FixtureRequest) -> Sandbox:
    """``papay_sandbox`` delivering its notifications to pytest-django's ``live_server`` (your notify view)."""
    live_server = request.getfixturevalue("live_server")
    parts = urlsplit(settings.PAPAY["NOTIFY_URL"])
    papay_sandbox.notify_rewrite = {f"{parts.scheme}://{parts.netloc}": live_server.url}
    return papay_sandbox

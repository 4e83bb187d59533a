"""Fixtures: keys generated per run, a loopback WeChat Pay sandbox, PAPAY settings pointing at it, the test's
contract in each state, a recorder for django_papay's signals, and staff logged in to the admin.

Plain helpers (constants, ``deliver``, ``run_action``, ...) live in helpers.py; import them from there.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from django_papay import crypto, wechatpay
from django_papay.models import Contract
from django_papay.sandbox import Sandbox
from django_papay.services import presign, query
from django_papay.services.certificate_store import forget_stored_certificates
from django_papay.signals import contract_signed, contract_terminated, deduction_failed, deduction_succeeded

from .helpers import (
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    OTHER_PLAN_ID,
    PLAN_ID,
    Fired,
    Keys,
    SignalRecorder,
    certificates_only,
    make_sandbox,
    orm_notify_path,
    papay_settings,
)
from .sandbox_merchant import Merchant

# --- the merchant and its WeChat Pay --------------------------------------------------------


@pytest.fixture(autouse=True)
def notify_path(monkeypatch) -> None:
    """``PAPAY_NOTIFY_PATH=orm`` runs the suite with PostgreSQL's short notify path off: the ORM's path everywhere."""
    if os.environ.get("PAPAY_NOTIFY_PATH") == "orm":
        orm_notify_path(monkeypatch)


@pytest.fixture(autouse=True)
def fresh_certificate_cache() -> Iterator[None]:
    """Each test's certificates are rolled back without signals: no test sees another's cached ones."""
    forget_stored_certificates()
    yield
    forget_stored_certificates()


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        merchant=crypto.generate_private_key(),
        wechatpay=crypto.generate_private_key(),
        apiv3_key=wechatpay.nonce(crypto.APIV3_KEY_BYTES),
        stranger=crypto.generate_private_key(),
    )


@pytest.fixture(scope="session")
def sandbox_server(keys: Keys) -> Iterator[Sandbox]:
    with make_sandbox(keys) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox, with no recorded requests and no pending faults."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def merchant(sandbox: Sandbox, keys: Keys) -> Merchant:
    """This run's merchant calling the test's sandbox directly, signing as its client does (no Django)."""
    return Merchant(sandbox, keys)


@pytest.fixture
def papay(settings, keys: Keys, sandbox: Sandbox) -> dict:
    """Configure PAPAY for the sandbox; tests change ``settings.PAPAY`` further as they need."""
    settings.PAPAY = papay_settings(keys, sandbox.url)
    return settings.PAPAY


@pytest.fixture
def certified(settings, keys: Keys, sandbox: Sandbox):
    """A certificate-only merchant whose WeChat Pay signs with its (one) platform certificate."""
    settings.PAPAY = certificates_only(keys, sandbox)
    issued = sandbox.certificates.issue()
    sandbox.certificates.sign_with_certificate = True
    return issued


# --- the test's contract, in each state -----------------------------------------------------


@pytest.fixture
def contract(db) -> Contract:
    """A saved contract, CREATED, under the suite's plan; its APPID and notify_url come from PAPAY."""
    return Contract.objects.create(plan_id=PLAN_ID, contract_display_account="138****8888")


@pytest.fixture
def presigned_contract(db, papay, sandbox: Sandbox) -> Contract:
    """A contract pre-signed for real: services.presign over HTTP to the sandbox (one request recorded)."""
    return presign(Contract.objects.create(plan_id=PLAN_ID, contract_display_account="138****8888"))


@pytest.fixture
def signed_contract(presigned_contract: Contract, sandbox: Sandbox) -> Contract:
    """The user signed at WeChat Pay, the notification never came, and a query learnt it."""
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)
    return query(presigned_contract)


# --- what business code sees ----------------------------------------------------------------


@pytest.fixture
def signals() -> Iterator[list[Fired]]:
    """contract_signed and contract_terminated as sent: ``("signed" | "terminated", contract pk, notification)``."""
    with SignalRecorder(signed=contract_signed, terminated=contract_terminated) as received:
        yield received


@pytest.fixture
def charges() -> Iterator[list[Fired]]:
    """deduction_succeeded and deduction_failed as sent: ``("succeeded" | "failed", deduction pk, None)``."""
    with SignalRecorder(succeeded=deduction_succeeded, failed=deduction_failed) as received:
        yield received


# --- staff in the admin ---------------------------------------------------------------------


@pytest.fixture
def staff_client(db) -> Callable[..., Client]:
    """``staff_client("view_contract", "presign_contract")``: a test Client logged in as a new staff user
    holding exactly those ``django_papay.<codename>`` permissions and no others."""
    numbers = itertools.count(1)

    def login(*codenames: str) -> Client:
        permissions = list(Permission.objects.filter(content_type__app_label="django_papay", codename__in=codenames))
        unknown = set(codenames) - {permission.codename for permission in permissions}
        if unknown:  # a misspelt codename would quietly test a user without it
            raise ValueError(f"no django_papay permission {sorted(unknown)}")
        user = User.objects.create_user(f"staff{next(numbers)}", is_staff=True)
        user.user_permissions.set(permissions)
        client = Client()
        client.force_login(user)
        return client

    return login


# --- users of the App -----------------------------------------------------------------------


@pytest.fixture
def app_papay(papay: dict) -> dict:
    """PAPAY for the App's endpoints: two plans users may sign, the default budget."""
    papay["APP_PLAN_IDS"] = [PLAN_ID, OTHER_PLAN_ID]
    return papay


@pytest.fixture
def app_user(db) -> Callable[..., Client]:
    """``app_user("13812348888")``: a test Client signed in (session) as a new, non-staff user of that name."""

    def sign_in(username: str = "13812348888", *, enforce_csrf_checks: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf_checks)
        client.force_login(User.objects.create_user(username))
        return client

    return sign_in


# --- the admin in a real browser ---------------------------------------------------------


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium (1280×1024; tests resize it), Debian's ``chromium`` and ``chromium-driver``: skipped
    without them on a developer's machine, a failure under CI=true (``.ci/run`` installs them)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        reason = (
            f"headless Chromium is not installed ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " — CI must run the browser test (.ci/run installs them)")
        pytest.skip(reason)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)  # a driver path given: no Selenium Manager
    driver.implicitly_wait(0)
    yield driver
    driver.quit()

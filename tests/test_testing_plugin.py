"""django_papay.testing as a site uses it: a project of its own, its conftest's one line, its tests run by pytest.

The site's tests run in a pytest of their own (a subprocess), with pytest-django and the plugin opted in
through ``pytest_plugins`` (or ``-p``), against the sandbox the plugin starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SETTINGS = """
SECRET_KEY = "a site's tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django_papay"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "site.sqlite3"}}
ROOT_URLCONF = "site_urls"
STATIC_URL = "/static/"
PAPAY = {  # the site's production settings: the plugin keeps APPID, APP_PLAN_IDS and NOTIFY_URL, not the keys
    "MCHID": "1230000109",
    "MERCHANT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "MERCHANT_PRIVATE_KEY_PATH": "/run/secrets/apiclient_key.pem",
    "APIV3_KEY": "not the sandbox's",
    "APPID": "wx1234567890abcdef",
    "NOTIFY_URL": "https://shop.example.com/papay/notify/",
    "APP_PLAN_IDS": [12535],
}
"""

URLS = """
from django.urls import include, path

urlpatterns = [path("papay/", include("django_papay.urls"))]
"""

CONFTEST = 'pytest_plugins = ["django_papay.testing"]\n'

TESTS = """
import pytest
from django.conf import settings

from django_papay import services
from django_papay.models import Contract, Deduction


def test_papay_points_at_the_sandbox_and_keeps_the_sites_own_settings(papay_sandbox):
    assert settings.PAPAY["BASE_URL"] == papay_sandbox.url
    assert settings.PAPAY["MCHID"] == papay_sandbox.mchid
    assert settings.PAPAY["APP_PLAN_IDS"] == [12535] and settings.PAPAY["APPID"] == "wx1234567890abcdef"


def test_a_signed_contract_is_charged(papay_sandbox, db):
    contract = Contract.objects.create(plan_id=12535, contract_display_account="138****8888")
    services.presign(contract)
    papay_sandbox.sign_contract(contract.out_contract_code, drop=True)
    services.query(contract)
    deduction = services.deduct(contract, [{"sub_mchid": "1900000201", "description": "fee", "amount": 100}])
    assert deduction.status == Deduction.Status.SUCCEEDED


def test_a_fault_queued_on_the_sandbox_reaches_the_sites_charge(papay_sandbox, db):
    contract = Contract.objects.create(plan_id=12535, contract_display_account="138****8888")
    services.presign(contract)
    papay_sandbox.sign_contract(contract.out_contract_code, drop=True)
    services.query(contract)
    papay_sandbox.fail_next("system_error_after")
    deduction = services.deduct(contract, [{"sub_mchid": "1900000201", "description": "fee", "amount": 100}])
    assert deduction.status == Deduction.Status.PROCESSING


def test_each_test_gets_a_reset_sandbox(papay_sandbox):
    assert papay_sandbox.requests == [] and not papay_sandbox.presigns


def test_the_live_sandbox_delivers_to_the_sites_notify_view(papay_live_sandbox, transactional_db):
    contract = Contract.objects.create(plan_id=12535, contract_display_account="138****8888")
    services.presign(contract)
    (delivery,) = papay_live_sandbox.sign_contract(contract.out_contract_code)
    assert delivery.status == 204
    contract.refresh_from_db()
    assert contract.status == Contract.Status.SIGNED
"""


@pytest.mark.parametrize("opt_in", ["conftest", "-p"])
def test_a_sites_tests_get_the_sandbox_from_one_line(tmp_path: Path, opt_in: str) -> None:
    (tmp_path / "site_settings.py").write_text(SETTINGS)
    (tmp_path / "site_urls.py").write_text(URLS)
    (tmp_path / "conftest.py").write_text(CONFTEST if opt_in == "conftest" else "")
    plugin = ["-p", "django_papay.testing"] if opt_in == "-p" else []
    (tmp_path / "test_site.py").write_text(textwrap.dedent(TESTS))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DJANGO_SETTINGS_MODULE": "site_settings",
        "PYTHONPATH": str(tmp_path),
    }
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugin,
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "5 passed" in ran.stdout

"""``manage.py papay_certificates``: download on demand, list what every worker trusts."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from .helpers import CERTIFICATES, certificates_only, downloads

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("papay_certificates", *args, stdout=out)
    return out.getvalue()


def test_lists_nothing_before_any_download(settings, keys, sandbox):
    settings.PAPAY = certificates_only(keys, sandbox)
    assert run() == "no platform certificates stored\n"
    assert sandbox.requests == []  # listing never calls WeChat Pay


def test_download_fetches_and_lists_serial_validity_and_source(certified, sandbox):
    output = run("--download")
    assert f"downloaded 1 certificate(s) from WeChat Pay; new: {certified.serial_no}" in output
    line = output.splitlines()[-1]
    assert line.startswith(f"{certified.serial_no}  valid")
    assert certified.expire_time.strftime("%Y") in line and sandbox.url + CERTIFICATES in line
    assert run("--download").count("new: none") == 1  # a manual download is not rate limited
    assert downloads(sandbox) == 2


def test_public_key_only_merchant_is_told_what_to_configure(papay, settings):
    settings.PAPAY = {**papay, "PLATFORM_CERTIFICATES": True}
    with pytest.raises(CommandError, match="uses the WeChat Pay public key"):
        run("--download")


def test_admin_lists_stored_certificates_read_only(certified, admin_client):
    run("--download")
    page = admin_client.get("/admin/django_papay/platformcertificate/").content.decode()
    assert certified.serial_no in page
    assert admin_client.get("/admin/django_papay/platformcertificate/add/").status_code == 403

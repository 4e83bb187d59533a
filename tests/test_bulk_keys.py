"""Bulk runs with platform certificates: the sending threads never touch the database.

The certificates live in the database, so ``run_many`` refreshes them (when due) in the calling thread
before any thread starts, gives the threads the keys in memory, and verifies each 2xx answer back in the
calling thread. A thread that touched the database would open a connection of its own (connections are
per thread), so the probe below records every connection opened in a ``run_many`` thread.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import timezone

from django_papay.models import CertificateRefresh, Contract, PlatformCertificate
from django_papay.services import PRESIGN, refresh_certificates, run_many

from .test_certificates import CERTIFICATES, certificates_only, downloads

pytestmark = pytest.mark.django_db

SENDING_THREADS = "papay"  # run_many's thread_name_prefix


@pytest.fixture
def certified(settings, keys, sandbox):
    """A certificate-only merchant, certificates downloaded, WeChat Pay signing with its certificate."""
    settings.PAPAY = certificates_only(keys, sandbox, BULK_CONCURRENCY=4)
    sandbox.certificates.issue()
    sandbox.certificates.sign_with_certificate = True
    refresh_certificates()
    sandbox.requests.clear()


@pytest.fixture
def opened_in_threads():
    """The names of the threads, other than the test's own, that opened a database connection."""
    opened: list[str] = []

    def record(sender, connection, **kwargs) -> None:
        if threading.current_thread() is not threading.main_thread():
            opened.append(threading.current_thread().name)

    connection_created.connect(record)
    yield opened
    connection_created.disconnect(record)


def contracts(count: int) -> list[Contract]:
    return [Contract.objects.create(plan_id=12535, contract_display_account=f"bulk{n}") for n in range(count)]


def _as_if_downloaded_an_hour_ago() -> None:
    hour_ago = timezone.now() - timedelta(hours=1)
    CertificateRefresh.objects.update(attempted_at=hour_ago, succeeded_at=hour_ago)


def test_the_probe_sees_a_thread_that_touches_the_database(opened_in_threads):
    def query() -> None:
        try:
            Contract.objects.exists()
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=query, name=f"{SENDING_THREADS}_probe")
    thread.start()
    thread.join()
    assert opened_in_threads == [f"{SENDING_THREADS}_probe"]


def test_bulk_presign_threads_make_no_database_query_with_platform_certificates(certified, opened_in_threads):
    outcomes = run_many(PRESIGN, contracts(6))

    assert [outcome.error for outcome in outcomes] == [None] * 6  # every answer verified with the certificate
    assert opened_in_threads == []


def test_a_due_refresh_happens_once_in_the_calling_thread_before_any_call(
    certified, settings, sandbox, opened_in_threads
):
    settings.PAPAY = {**settings.PAPAY, "CERTIFICATE_REFRESH_INTERVAL": 1800}
    _as_if_downloaded_an_hour_ago()

    outcomes = run_many(PRESIGN, contracts(4))

    assert all(outcome.ok for outcome in outcomes)
    paths = [request.path for request in sandbox.requests]
    assert paths[0] == CERTIFICATES and downloads(sandbox) == 1
    assert len(paths) == 5
    assert opened_in_threads == []


def test_bulk_answers_signed_by_a_rotated_certificate_download_it_once_in_the_calling_thread(
    certified, sandbox, opened_in_threads
):
    _as_if_downloaded_an_hour_ago()  # not due (12 h), but past the one-download-a-minute limit
    rotated = sandbox.certificates.rotate()

    outcomes = run_many(PRESIGN, contracts(4))

    assert all(outcome.ok for outcome in outcomes)
    assert downloads(sandbox) == 1
    assert PlatformCertificate.objects.filter(serial_no=rotated.serial_no).exists()
    assert opened_in_threads == []


def test_signed_error_answers_are_verified_in_the_threads_with_the_keys_in_memory(
    certified, sandbox, opened_in_threads
):
    sandbox.answer_next(400, "PARAM_ERROR", "协议模板不存在")

    (outcome,) = run_many(PRESIGN, contracts(1))

    assert outcome.error.code == "PARAM_ERROR"  # not refused as an unknown key: the snapshot knew the certificate
    assert opened_in_threads == []

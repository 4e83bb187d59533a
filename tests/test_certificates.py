"""Platform certificates: downloaded from the sandbox, decrypted, checked, stored once for every worker."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_papay import wechatpay
from django_papay.exceptions import InvalidResponseError, WeChatPayError
from django_papay.models import CertificateRefresh, PlatformCertificate
from django_papay.services.certificates import NoPlatformCertificates, refresh_certificates
from django_papay.services.connections import get_client

from .helpers import CERTIFICATES, PRESIGN, certificates_only, downloads, presign_payload


def _as_if_downloaded_an_hour_ago() -> None:
    hour_ago = timezone.now() - timedelta(hours=1)
    CertificateRefresh.objects.update(attempted_at=hour_ago, succeeded_at=hour_ago)


@pytest.mark.django_db
def test_download_decrypts_checks_and_stores_the_certificates(certified, sandbox):
    refresh = refresh_certificates()
    serials = (certified.serial_no,)
    assert (refresh.downloaded, refresh.serials, refresh.added) == (True, serials, serials)
    stored = PlatformCertificate.objects.get()
    assert stored.serial_no == certified.serial_no
    assert stored.pem == certified.pem  # decrypted with the APIv3 key
    assert (stored.effective_time, stored.expire_time) == (certified.effective_time, certified.expire_time)
    assert stored.source == sandbox.url + CERTIFICATES
    (request,) = sandbox.requests
    assert wechatpay.SERIAL_HEADER not in request.headers  # certificate-only: no public key id to ask for


@pytest.mark.django_db
def test_first_download_is_verified_with_a_certificate_it_carries(certified, sandbox):
    assert not PlatformCertificate.objects.exists()
    refresh_certificates()
    assert PlatformCertificate.objects.filter(serial_no=certified.serial_no).exists()


@pytest.mark.django_db
def test_certificate_list_signed_by_a_key_neither_known_nor_listed_stores_nothing(certified, sandbox):
    sandbox.fail_next("unknown_serial")
    with pytest.raises(InvalidResponseError):
        refresh_certificates()
    assert not PlatformCertificate.objects.exists()


@pytest.mark.django_db
def test_certificate_list_that_does_not_open_with_our_apiv3_key_stores_nothing(certified, settings, sandbox):
    settings.PAPAY = {**settings.PAPAY, "APIV3_KEY": "x" * 32}
    with pytest.raises(WeChatPayError) as caught:
        refresh_certificates()
    assert (caught.value.code, caught.value.retryable) == ("CERTIFICATE_DECRYPT_ERROR", False)
    assert "APIV3_KEY" in caught.value.message
    assert not PlatformCertificate.objects.exists()
    assert "CERTIFICATE_DECRYPT_ERROR" in CertificateRefresh.objects.get().last_error


@pytest.mark.django_db
def test_expired_certificate_in_the_list_is_not_stored(settings, keys, sandbox):
    settings.PAPAY = certificates_only(keys, sandbox)
    expired = sandbox.certificates.issue(not_before=timezone.now() - timedelta(days=400), valid_for=timedelta(days=365))
    valid = sandbox.certificates.issue()
    sandbox.certificates.sign_with_certificate = True
    assert refresh_certificates().serials == (valid.serial_no,)
    assert list(PlatformCertificate.objects.values_list("serial_no", flat=True)) == [valid.serial_no]
    assert expired.serial_no != valid.serial_no


@pytest.mark.django_db
def test_public_key_only_merchant_gets_a_clear_message_not_a_crash(papay, settings, sandbox):
    settings.PAPAY = {**papay, "PLATFORM_CERTIFICATES": True}
    with pytest.raises(NoPlatformCertificates) as caught:
        refresh_certificates()
    assert caught.value.code == "RESOURCE_NOT_EXISTS" and caught.value.retryable is False
    assert "uses the WeChat Pay public key" in str(caught.value)
    assert "WECHATPAY_PUBLIC_KEY_ID" in str(caught.value)
    # ...and the API keeps working with the public key.
    assert get_client().post(PRESIGN, presign_payload("PUBLICKEYONLY1")).status == 200


@pytest.mark.django_db
def test_rotation_is_picked_up_once_when_an_answer_carries_the_new_serial(certified, sandbox):
    refresh_certificates()
    _as_if_downloaded_an_hour_ago()
    rotated = sandbox.certificates.rotate()
    before = downloads(sandbox)
    for number in range(3):
        answer = get_client().post(PRESIGN, presign_payload(f"ROTATION{number}"))
        assert answer.headers[wechatpay.SERIAL_HEADER] == rotated.serial_no
    assert downloads(sandbox) - before == 1
    assert set(PlatformCertificate.objects.values_list("serial_no", flat=True)) == {
        certified.serial_no,
        rotated.serial_no,
    }


@pytest.mark.django_db
def test_unknown_serials_on_answers_download_at_most_once_a_minute(certified, sandbox):
    refresh_certificates()
    _as_if_downloaded_an_hour_ago()
    before = downloads(sandbox)
    for _ in range(2):
        sandbox.fail_next("unknown_serial")
        with pytest.raises(InvalidResponseError) as caught:
            get_client().post(PRESIGN, presign_payload("STRANGER1"))
        assert "unknown key" in caught.value.message
        assert repr(certified.serial_no) in caught.value.message  # the stored certificate this site trusts
    assert downloads(sandbox) - before == 1  # the second one was within the minimum interval


@pytest.mark.django_db
def test_stored_certificates_are_downloaded_again_when_due(certified, settings, sandbox):
    settings.PAPAY = {**settings.PAPAY, "CERTIFICATE_REFRESH_INTERVAL": 1800}
    refresh_certificates()
    get_client().post(PRESIGN, presign_payload("NOTDUE1"))
    assert downloads(sandbox) == 1  # fresh: nothing to do
    _as_if_downloaded_an_hour_ago()
    get_client().post(PRESIGN, presign_payload("DUE1"))
    assert downloads(sandbox) == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_make_one_download(certified, sandbox):
    sandbox.response_delay = 0.5  # the first download is still running when the second one starts
    start = threading.Barrier(2)
    results, errors = [], []

    def worker() -> None:
        try:
            start.wait()
            results.append(refresh_certificates())
            results.append(PlatformCertificate.objects.filter(serial_no=certified.serial_no).exists())
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own database connection

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    refreshes = [result for result in results if not isinstance(result, bool)]
    assert sorted(refresh.downloaded for refresh in refreshes) == [False, True]
    assert [result for result in results if isinstance(result, bool)] == [True, True]  # both see it stored
    assert downloads(sandbox) == 1

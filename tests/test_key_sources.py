"""Which key verifies what: the public key alone, certificates alone, or both during WeChat Pay's migration.

Notifications only ever look keys up: an unknown serial is refused and WeChat Pay is not called.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from django_papay import conf, wechatpay
from django_papay.exceptions import InvalidResponseError
from django_papay.models import CertificateRefresh, Contract, Notification, PlatformCertificate
from django_papay.services.certificates import refresh_certificates
from django_papay.services.connections import get_client

from .helpers import APPID, PRESIGN, WECHATPAY_PUBLIC_KEY_ID, certificates_only, deliver, downloads, presign_payload

pytestmark = pytest.mark.django_db


def signed_elsewhere(sandbox, code: str):
    """A SIGN notification for a contract signed outside this site (no pre-sign needed)."""
    return sandbox.sign_notification(code, plan_id=777, appid=APPID)


@pytest.fixture
def mixed(settings, papay, sandbox):
    """A merchant moving to the public key: both key sources configured, WeChat Pay holding a certificate."""
    settings.PAPAY = {**papay, "PLATFORM_CERTIFICATES": True}
    return sandbox.certificates.issue()


def test_public_key_only_verifies_answers_and_never_downloads(papay, sandbox):
    answer = get_client().post(PRESIGN, presign_payload("PUBKEY1"))
    assert answer.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    sandbox.fail_next("unknown_serial")
    with pytest.raises(InvalidResponseError):
        get_client().post(PRESIGN, presign_payload("PUBKEY2"))
    assert downloads(sandbox) == 0


def test_public_key_only_verifies_notifications(papay, sandbox):
    assert deliver(signed_elsewhere(sandbox, "PUBKEYNOTIFY1")).status_code == 204


def test_mixed_mode_verifies_answers_signed_with_either_key(mixed, sandbox):
    by_public_key = get_client().post(PRESIGN, presign_payload("MIXED1"))
    assert by_public_key.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert downloads(sandbox) == 1  # certificates never downloaded are due: fetched on first use
    sandbox.certificates.sign_with_certificate = True
    by_certificate = get_client().post(PRESIGN, presign_payload("MIXED2"))
    assert by_certificate.headers[wechatpay.SERIAL_HEADER] == mixed.serial_no
    assert downloads(sandbox) == 1
    assert all(request.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID for request in sandbox.requests)


def test_mixed_mode_picks_up_a_certificate_first_seen_on_an_answer(mixed, sandbox):
    sandbox.certificates.sign_with_certificate = True
    refresh_certificates()
    CertificateRefresh.objects.update(attempted_at=timezone.now() - timedelta(hours=1))
    rotated = sandbox.certificates.rotate()
    assert get_client().post(PRESIGN, presign_payload("MIXED3")).headers[wechatpay.SERIAL_HEADER] == rotated.serial_no
    assert downloads(sandbox) == 2


def test_mixed_mode_verifies_notifications_signed_with_either_key(mixed, sandbox):
    refresh_certificates()
    assert deliver(signed_elsewhere(sandbox, "MIXEDNOTIFY1")).status_code == 204  # the public key
    sandbox.certificates.sign_with_certificate = True
    notification = signed_elsewhere(sandbox, "MIXEDNOTIFY2")
    assert notification.headers[wechatpay.SERIAL_HEADER] == mixed.serial_no
    assert deliver(notification).status_code == 204  # the stored certificate
    assert Contract.objects.filter(status=Contract.Status.SIGNED).count() == 2


def test_certificate_only_verifies_notifications_with_the_stored_certificate(certified, sandbox):
    refresh_certificates()
    assert deliver(signed_elsewhere(sandbox, "CERTNOTIFY1")).status_code == 204


def test_notification_with_an_unknown_serial_is_rejected_without_calling_wechatpay(certified, sandbox):
    refresh_certificates()
    rotated = sandbox.certificates.rotate()  # not downloaded yet
    sandbox.requests.clear()

    response = deliver(signed_elsewhere(sandbox, "ROTATEDNOTIFY1"))

    assert response.status_code == 401
    assert sandbox.requests == []  # no certificate download, no call of any kind
    assert not PlatformCertificate.objects.filter(serial_no=rotated.serial_no).exists()
    delivery = Notification.objects.get()
    assert (delivery.result, delivery.verified) == ("rejected", False)
    assert "unknown_serial" in delivery.error


def test_certificates_alone_need_no_public_key_settings(settings, keys, sandbox):
    settings.PAPAY = certificates_only(keys, sandbox)
    assert conf.wechatpay_public_keys() == {}
    assert conf.client_settings().wechatpay_serial is None  # no Wechatpay-Serial header is sent


def test_no_key_source_at_all_names_both_options(settings, papay):
    del settings.PAPAY["WECHATPAY_PUBLIC_KEY"], settings.PAPAY["WECHATPAY_PUBLIC_KEY_ID"]
    with pytest.raises(ImproperlyConfigured, match=r"WECHATPAY_PUBLIC_KEY_ID.*PLATFORM_CERTIFICATES"):
        conf.wechatpay_public_keys()


def test_backup_host_and_certificates_are_off_by_default(papay):
    assert conf.backup_base_url() is None
    assert conf.platform_certificates() is False

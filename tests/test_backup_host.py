"""BACKUP_BASE_URL: used when the main host cannot be reached, never once the request may have arrived."""

from __future__ import annotations

import pytest

from django_papay.exceptions import WeChatPayError, WeChatPayNetworkError
from django_papay.models import PlatformCertificate
from django_papay.sandbox import Sandbox
from django_papay.services.certificates import refresh_certificates
from django_papay.services.connections import get_client

from .helpers import PRESIGN, make_sandbox, presign_payload, refused_url


@pytest.fixture(scope="module")
def backup_server(keys):
    """A second WeChat Pay access point for the same merchant, like api2.mch.weixin.qq.com."""
    with make_sandbox(keys) as server:
        yield server


@pytest.fixture
def backup(backup_server: Sandbox, settings, papay) -> Sandbox:
    backup_server.reset()
    settings.PAPAY = {**papay, "BACKUP_BASE_URL": backup_server.url}
    return backup_server


def test_backup_host_is_used_when_the_main_host_refuses_connections(backup, settings):
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": refused_url()}
    answer = get_client().post(PRESIGN, presign_payload("BACKUP1"))
    assert answer.status == 200 and answer.data["pre_entrustweb_id"] in backup.presigns
    assert len(backup.requests) == 1


def test_backup_host_is_not_used_after_a_5xx(backup, sandbox):
    sandbox.fail_next("system_error")
    with pytest.raises(WeChatPayError) as caught:
        get_client().post(PRESIGN, presign_payload("BACKUP2"))
    assert (caught.value.status, caught.value.code) == (500, "SYSTEM_ERROR")
    assert len(sandbox.requests) == 1 and backup.requests == []


def test_backup_host_is_not_used_after_a_reset_once_the_request_was_sent(backup, sandbox):
    sandbox.fail_next("reset")
    with pytest.raises(WeChatPayNetworkError):
        get_client().post(PRESIGN, presign_payload("BACKUP3"))
    assert len(sandbox.requests) == 1 and backup.requests == []


def test_backup_host_is_not_used_after_a_read_timeout(backup, sandbox, settings, monkeypatch):
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": (1.0, 0.3)}
    monkeypatch.setattr(sandbox, "fault_delay", 0.6)
    sandbox.fail_next("timeout")
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, presign_payload("BACKUP4"))
    assert caught.value.code == "TIMEOUT"
    assert backup.requests == []


def test_both_hosts_refusing_is_one_retryable_network_error(backup, settings):
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": refused_url(), "BACKUP_BASE_URL": refused_url()}
    with pytest.raises(WeChatPayNetworkError) as caught:
        get_client().post(PRESIGN, presign_payload("BACKUP5"))
    assert (caught.value.code, caught.value.retryable) == ("NETWORK_ERROR", True)


def test_certificates_downloaded_through_the_backup_host_name_it_as_their_source(backup, settings, db):
    backup.certificates.issue()
    settings.PAPAY = {**settings.PAPAY, "BASE_URL": refused_url(), "PLATFORM_CERTIFICATES": True}
    refresh_certificates()
    assert PlatformCertificate.objects.get().source == backup.url + "/v3/certificates"

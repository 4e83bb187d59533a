"""PAPAY["CA_BUNDLE"]: the client trusts exactly the CAs it names, here a sandbox served over https."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_papay import conf
from django_papay.exceptions import WeChatPayNetworkError
from django_papay.models import Contract
from django_papay.sandbox import TLSFiles, self_signed_certificate
from django_papay.services import presign
from django_papay.services.connections import get_client

from .helpers import make_sandbox, papay_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> TLSFiles:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_sandbox(keys, certificate):
    with make_sandbox(keys, tls=certificate) as server:
        yield server


@pytest.fixture
def contract() -> Contract:
    return Contract.objects.create(plan_id=12535, contract_display_account="138****8888")


def test_sandbox_with_tls_serves_https(https_sandbox):
    assert https_sandbox.url.startswith("https://127.0.0.1:")


def test_presign_over_https_works_when_ca_bundle_trusts_the_certificate(
    settings, keys, https_sandbox, certificate, contract
):
    settings.PAPAY = papay_settings(keys, https_sandbox.url, CA_BUNDLE=certificate.certfile)
    presign(contract)
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.PRESIGNED
    assert contract.pre_entrustweb_id in https_sandbox.presigns


def test_presign_over_https_without_ca_bundle_is_a_retryable_network_error(settings, keys, https_sandbox, contract):
    settings.PAPAY = papay_settings(keys, https_sandbox.url)
    with pytest.raises(WeChatPayNetworkError) as raised:
        presign(contract)
    assert raised.value.retryable
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == Contract.Status.CREATED
    assert "SSLError" in stored.last_error


def test_changing_ca_bundle_gives_a_new_client(settings, keys, certificate):
    settings.PAPAY = papay_settings(keys, "https://127.0.0.1:9")
    default_trust = get_client()
    settings.PAPAY = {**settings.PAPAY, "CA_BUNDLE": certificate.certfile}
    assert get_client() is not default_trust
    assert get_client().config.ca_bundle == certificate.certfile


def test_ca_bundle_that_does_not_exist_names_the_key(settings, keys, tmp_path):
    settings.PAPAY = papay_settings(keys, "https://127.0.0.1:9", CA_BUNDLE=str(tmp_path / "missing.pem"))
    with pytest.raises(ImproperlyConfigured, match=r'PAPAY\["CA_BUNDLE"\]'):
        conf.ca_bundle()

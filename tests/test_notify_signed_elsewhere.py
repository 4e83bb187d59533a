"""A genuine SIGN for a contract this site has no record of (signed through another channel) creates the
contract only under one of the site's AppIDs and with a code that follows WeChat Pay's rule; otherwise it is
rejected and stored like any rejected delivery."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_papay import conf
from django_papay.models import Contract, Notification

from .helpers import APPID, deliver

pytestmark = pytest.mark.django_db


def test_sign_for_an_unknown_code_under_our_appid_creates_a_signed_contract(papay, sandbox):
    response = deliver(sandbox.sign_notification("ELSEWHERE1", plan_id=777, appid=APPID))
    assert response.status_code == 204
    assert Contract.objects.get(out_contract_code="ELSEWHERE1").status == Contract.Status.SIGNED


def test_sign_for_an_unknown_code_under_a_foreign_appid_is_rejected(papay, sandbox):
    response = deliver(sandbox.sign_notification("ELSEWHERE2", plan_id=777, appid="wxforeign0000000001"))
    assert response.status_code == 400
    assert not Contract.objects.exists()
    delivery = Notification.objects.get()
    assert (delivery.verified, delivery.result, delivery.contract) == (True, "rejected", None)
    assert delivery.error.startswith("appid: ")


def test_an_appid_listed_in_extra_appids_is_accepted(papay, sandbox):
    papay["EXTRA_APPIDS"] = ["wxotherapp000000001"]
    response = deliver(sandbox.sign_notification("ELSEWHERE3", plan_id=777, appid="wxotherapp000000001"))
    assert response.status_code == 204
    assert Contract.objects.get().appid == "wxotherapp000000001"


def test_sign_for_an_unknown_code_breaking_the_field_rule_is_rejected(papay, sandbox):
    response = deliver(sandbox.sign_notification("bad-code_1", plan_id=777, appid=APPID))
    assert response.status_code == 400
    assert not Contract.objects.exists()
    assert Notification.objects.get().error.startswith("out_contract_code: ")


def test_extra_appids_must_be_a_list_of_appids(papay):
    papay["EXTRA_APPIDS"] = "wxotherapp000000001"
    with pytest.raises(ImproperlyConfigured, match="EXTRA_APPIDS"):
        conf.extra_appids()

"""The notify view, through a CSRF-enforcing test client, with notifications signed and sealed like WeChat Pay's."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_papay import views, wechatpay
from django_papay.models import Contract, Notification
from django_papay.services import query
from django_papay.signals import contract_signed

from .helpers import APPID, MCHID, NOTIFY_URL, deliver, failing_receiver

pytestmark = pytest.mark.django_db
NOTIFY = reverse("django_papay:notify")


def _snapshot():
    return list(Contract.objects.order_by("pk").values())


def test_genuine_sign_signs_the_contract_and_fires_contract_signed_once(presigned_contract, sandbox, signals):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    response = deliver(notification)
    assert response.status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED
    assert presigned_contract.openid == notification.resource["openid"]
    assert "contract_id" not in notification.resource and presigned_contract.contract_id == ""  # as documented
    assert presigned_contract.signed_at is not None
    assert presigned_contract.contract_expired_at > presigned_contract.signed_at
    assert [(kind, pk) for kind, pk, _ in signals] == [("signed", presigned_contract.pk)]
    delivery = Notification.objects.get()
    assert (delivery.verified, delivery.processed, delivery.result) == (True, True, "applied")
    assert delivery.contract == presigned_contract and delivery.notification_id == notification.id
    assert delivery.resource["out_contract_code"] == presigned_contract.out_contract_code


def test_duplicate_notification_changes_state_once(presigned_contract, sandbox, signals):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    assert deliver(notification).status_code == 204
    after_first = _snapshot()
    for _ in range(5):
        assert deliver(notification.signed_again()).status_code == 204
    assert _snapshot() == after_first
    assert len(signals) == 1
    results = list(Notification.objects.order_by("pk").values_list("result", flat=True))
    assert results == ["applied"] + ["duplicate"] * 5


def test_terminate_terminates(presigned_contract, sandbox, signals):
    deliver(sandbox.sign_notification(presigned_contract.out_contract_code))
    response = deliver(sandbox.terminate_notification(presigned_contract.out_contract_code, mode="MCH_API_TERMINATE"))
    assert response.status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.TERMINATED
    assert presigned_contract.termination_mode == "MCH_API_TERMINATE"
    assert presigned_contract.terminated_at is not None
    assert [kind for kind, _, _ in signals] == ["signed", "terminated"]


def test_older_sign_after_terminate_leaves_it_terminated(presigned_contract, sandbox, signals):
    signed_at = timezone.now() - timedelta(minutes=10)
    sign = sandbox.sign_notification(presigned_contract.out_contract_code, operate_time=signed_at)
    terminated_at = signed_at + timedelta(minutes=5)
    terminate = sandbox.terminate_notification(presigned_contract.out_contract_code, operate_time=terminated_at)
    assert deliver(terminate).status_code == 204
    assert deliver(sign.signed_again()).status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.TERMINATED
    late = Notification.objects.get(notification_id=sign.id)
    assert (late.result, late.processed) == ("ignored", True)
    assert "terminated" in late.note
    assert [kind for kind, _, _ in signals] == ["terminated"]


def test_terminate_older_than_the_signing_is_ignored(presigned_contract, sandbox):
    now = timezone.now()
    deliver(sandbox.sign_notification(presigned_contract.out_contract_code, operate_time=now))
    old = sandbox.terminate_notification(presigned_contract.out_contract_code, operate_time=now - timedelta(days=1))
    assert deliver(old).status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED
    assert Notification.objects.get(notification_id=old.id).result == "ignored"


def _forgeries(sandbox, contract, keys):
    code = contract.out_contract_code
    genuine = sandbox.sign_notification(code)
    resource = genuine.resource
    stranger = keys.stranger
    # Whole seconds rounded away from now, so that "301 s" stays more than 300 s off for as long as building
    # and posting take under a second (int() alone would leave as little as 300.001 s ahead).
    now = time.time()
    behind, ahead = math.floor(now) - 301, math.ceil(now) + 301
    return {
        "no signature header": (genuine, {wechatpay.SIGNATURE_HEADER: ""}),
        "signed by another key": (sandbox.notification(genuine.event_type, resource, private_key=stranger), {}),
        "valid signature of a different body": (
            genuine,
            {wechatpay.SIGNATURE_HEADER: sandbox.sign_notification(code).headers[wechatpay.SIGNATURE_HEADER]},
        ),
        "unknown serial": (sandbox.notification(genuine.event_type, resource, serial="PUB_KEY_ID_0000STRANGER"), {}),
        "timestamp 301 s old": (sandbox.notification(genuine.event_type, resource, timestamp=behind), {}),
        "timestamp 301 s ahead": (sandbox.notification(genuine.event_type, resource, timestamp=ahead), {}),
        "SIGNTEST probe": (
            sandbox.notification(genuine.event_type, resource, signature="WECHATPAY/SIGNTEST/" + "A" * 340),
            {},
        ),
        "signed body that is not JSON": (sandbox.notification(genuine.event_type, resource, body=b"<xml>hi</xml>"), {}),
        "resource sealed with another APIv3 key": (
            sandbox.notification(genuine.event_type, resource, apiv3_key="k" * 32),
            {},
        ),
        "another merchant's mchid": (sandbox.sign_notification(code, mchid="1230000109"), {}),
        "a plan_id that is not the contract's": (sandbox.sign_notification(code, plan_id=999), {}),
        "an appid that is not the contract's": (sandbox.sign_notification(code, appid="wx0000000000000bad"), {}),
        "wrong signature type": (genuine, {wechatpay.SIGNATURE_TYPE_HEADER: "WECHATPAY2-SHA256-RSA4096"}),
    }


FORGERIES = [
    "no signature header",
    "signed by another key",
    "valid signature of a different body",
    "unknown serial",
    "timestamp 301 s old",
    "timestamp 301 s ahead",
    "SIGNTEST probe",
    "signed body that is not JSON",
    "resource sealed with another APIv3 key",
    "another merchant's mchid",
    "a plan_id that is not the contract's",
    "an appid that is not the contract's",
    "wrong signature type",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_rejected_notification_gets_4xx_changes_nothing_and_is_stored(
    presigned_contract, sandbox, keys, signals, forgery
):
    notification, header_changes = _forgeries(sandbox, presigned_contract, keys)[forgery]
    before = _snapshot()
    response = deliver(notification, **header_changes)
    assert 400 <= response.status_code < 500
    assert response.json()["code"] == "FAIL" and response.json()["message"]
    assert _snapshot() == before
    assert signals == []
    delivery = Notification.objects.get()
    assert (delivery.processed, delivery.result) == (False, "rejected")
    assert delivery.error
    assert delivery.body == notification.body.decode()


def test_forged_delivery_reusing_a_real_id_does_not_block_the_real_one(presigned_contract, sandbox, keys, signals):
    genuine = sandbox.sign_notification(presigned_contract.out_contract_code)
    forged = genuine.signed_again(private_key=keys.stranger)
    assert deliver(forged).status_code == 401
    assert deliver(genuine).status_code == 204
    assert deliver(forged).status_code == 401
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED
    rows = Notification.objects.filter(notification_id=genuine.id).order_by("pk")
    assert [(r.verified, r.result) for r in rows] == [(False, "rejected"), (True, "applied"), (False, "rejected")]
    assert len(signals) == 1


def test_receiver_that_raises_gives_5xx_and_no_state_change_then_redelivery_applies_once(
    presigned_contract, sandbox, signals
):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    with failing_receiver(contract_signed, RuntimeError("CRM is down")):
        response = deliver(notification)
    assert response.status_code == 500
    assert response.json()["code"] == "FAIL"
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.PRESIGNED
    failed = Notification.objects.get()
    assert (failed.verified, failed.processed, failed.result) == (True, False, "failed")
    assert "CRM is down" in failed.error

    assert deliver(notification.signed_again()).status_code == 204
    assert deliver(notification.signed_again()).status_code == 204
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    assert [kind for kind, _, _ in signals] == ["signed", "signed"]  # the rolled-back attempt, then the real one
    assert list(Notification.objects.order_by("pk").values_list("result", flat=True)) == [
        "failed",
        "applied",
        "duplicate",
    ]


@pytest.mark.django_db(transaction=True)
def test_failed_processing_log_row_survives_atomic_requests(presigned_contract, sandbox, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    with failing_receiver(contract_signed, RuntimeError("receiver failed")):
        response = deliver(sandbox.sign_notification(presigned_contract.out_contract_code))
    assert response.status_code == 500
    assert Notification.objects.get().result == "failed"
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.PRESIGNED
    assert "default" in views.notify._non_atomic_requests


def test_unknown_contract_is_created_from_a_verified_notification(papay, sandbox, signals):
    notification = sandbox.sign_notification("SIGNEDELSEWHERE1", plan_id=777, appid=APPID, url=NOTIFY_URL)
    assert deliver(notification).status_code == 204
    contract = Contract.objects.get(out_contract_code="SIGNEDELSEWHERE1")
    assert (contract.status, contract.plan_id, contract.mchid) == (Contract.Status.SIGNED, 777, MCHID)
    assert contract.openid == notification.resource["openid"]
    assert [kind for kind, _, _ in signals] == ["signed"]


# A type of a family we handle, another of the refund family, and one of a family not handled at all.
@pytest.mark.parametrize(
    "event_type", ["ECOMMERCE_ENTRUST.SOMETHING_NEW", "REFUND.SOMETHING_NEW", "TRANSACTION.SUCCESS"]
)
def test_unknown_event_type_is_stored_and_acknowledged(presigned_contract, sandbox, signals, event_type):
    notification = sandbox.notification(event_type, {"mchid": MCHID, "hello": "world"})
    before = _snapshot()
    assert deliver(notification).status_code == 204
    assert _snapshot() == before and signals == []
    delivery = Notification.objects.get()
    assert (delivery.verified, delivery.processed, delivery.result) == (True, True, "unknown_event")
    assert delivery.resource == {"mchid": MCHID, "hello": "world"}


def test_sign_with_contract_id_stores_it(presigned_contract, sandbox):
    sandbox.notify_contract_id = True  # as one SDK maps it; the documented resource has none
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    deliver(notification)
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED
    assert presigned_contract.contract_id == notification.resource["contract_id"]


def test_the_attach_of_a_sign_is_stored_and_a_later_query_keeps_it(presigned_contract, sandbox):
    code = presigned_contract.out_contract_code
    notification = sandbox.sign_notification(code, attach="订单 42")
    sandbox.record(notification)
    deliver(notification)
    query(presigned_contract)  # the query has no attach
    presigned_contract.refresh_from_db()
    assert (presigned_contract.sign_attach, presigned_contract.attach) == ("订单 42", "")


@pytest.mark.parametrize("attach", ["a\x00b", "z" * 256, {"order": 42}])
def test_an_attach_no_column_can_hold_is_refused_and_logged(presigned_contract, sandbox, attach):
    response = deliver(sandbox.sign_notification(presigned_contract.out_contract_code, attach=attach))
    assert response.status_code == 400
    assert Notification.objects.get().result == "rejected"
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.PRESIGNED and presigned_contract.sign_attach == ""


def test_get_is_not_allowed(papay):
    assert Client().get(NOTIFY).status_code == 405
    assert Notification.objects.count() == 0


def test_oversized_body_is_refused_unread_and_logged(papay):
    response = Client().post(NOTIFY, data=b"x" * (views.MAX_BODY_BYTES + 1), content_type="application/json")
    assert response.status_code == 413
    delivery = Notification.objects.get()
    assert (delivery.body, delivery.result) == ("", "rejected")


def test_garbage_body_is_stored_and_refused(papay):
    response = Client(enforce_csrf_checks=True).post(NOTIFY, data=b"\x00\xff{", content_type="application/json")
    assert response.status_code == 401
    assert Notification.objects.get().body == "\\x00\\xff{"

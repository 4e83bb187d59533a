"""Odd deliveries the fuzzer (test_fuzz_notify.py) once turned into a 5xx or a lost log row, one test each."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from django_papay import crypto, wechatpay
from django_papay.models import Contract, Notification

from .helpers import MCHID, deliver

pytestmark = pytest.mark.django_db
NOTIFY = reverse("django_papay:notify")


def _post(body: bytes, **environ: str):
    """Bytes that are no notification at all, posted as one would be."""
    return Client(enforce_csrf_checks=True).post(NOTIFY, data=body, content_type="application/json", **environ)


def test_deeply_nested_body_is_logged_and_refused(papay):
    response = _post(b"[" * 60_000)  # past the JSON parser's recursion limit
    assert response.status_code == 401
    assert Notification.objects.get().result == "rejected"


def test_lone_surrogate_and_nul_in_the_envelope_are_logged_escaped(papay):
    response = _post(b'{"id": "\\ud800", "event_type": "\\u0000SIGN"}')
    assert response.status_code == 401
    delivery = Notification.objects.get()
    assert (delivery.notification_id, delivery.event_type) == ("\\ud800", "\\x00SIGN")


@pytest.mark.parametrize("escaped_id, stored", [(b"\\ud800", "\\ud800"), (b"a\\u0000b", "a\\x00b")])
def test_a_signed_id_the_database_cannot_hold_as_sent_is_applied_and_stored_escaped(
    presigned_contract, sandbox, escaped_id, stored
):
    genuine = sandbox.sign_notification(presigned_contract.out_contract_code)
    body = genuine.body.replace(genuine.id.encode(), escaped_id)  # a JSON escape, inside the signed body
    assert deliver(sandbox.notification(genuine.event_type, genuine.resource, body=body)).status_code == 204
    delivery = Notification.objects.get()
    assert (delivery.notification_id, delivery.result) == (stored, "applied")
    assert deliver(sandbox.notification(genuine.event_type, genuine.resource, body=body)).status_code == 204
    assert Notification.objects.latest("pk").result == "duplicate"


def test_nul_in_a_header_is_logged_escaped(presigned_contract, sandbox):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    assert deliver(notification, **{wechatpay.NONCE_HEADER: "a\x00b"}).status_code == 401
    assert Notification.objects.get().headers[wechatpay.NONCE_HEADER] == "a\\x00b"


def test_ipv6_zone_is_left_out_of_the_remote_address(papay):
    _post(b"{}", REMOTE_ADDR="fe80::1%eth0")
    assert Notification.objects.get().remote_addr == "fe80::1"


def test_thousand_digit_timestamp_is_refused_as_stale(presigned_contract, sandbox):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    response = deliver(notification, **{wechatpay.TIMESTAMP_HEADER: "1" * 1000})
    assert response.status_code == 401
    assert Notification.objects.get().error.startswith("stale:")


@pytest.mark.parametrize("timestamp", ["1" * 1000, " 1700000000", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "+1700000000"])
def test_only_ascii_digits_make_a_timestamp(timestamp):
    assert not crypto.timestamp_is_fresh(timestamp, now=1_700_000_000)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "overrides",
    [
        {"out_contract_code": "C" * 33},  # longer than the column
        {"appid": "wx" + "0" * 31},
        {"openid": "o\x00penid"},
        {"contract_id": "签约"},
        {"plan_id": 2**63},  # past a 64-bit integer
        {"operate_time": "0001-01-01T00:00:00+08:00"},  # before the first UTC moment
        {"contract_expired_time": "9999-12-31T23:59:59-08:00"},  # after the last
        {"mchid": float("inf")},  # stored as JSON, which has no Infinity
        {"attach": _nested(40)},  # deeper than any resource WeChat Pay sends
    ],
)
def test_signed_resource_the_database_cannot_hold_is_refused_and_logged(presigned_contract, sandbox, overrides):
    resource = sandbox.sign_notification(presigned_contract.out_contract_code).resource
    notification = sandbox.notification("ECOMMERCE_ENTRUST.SIGN", {**resource, **overrides})
    response = deliver(notification)
    assert response.status_code == 400, response.content
    assert Notification.objects.get().result == "rejected"
    assert list(Contract.objects.values_list("status", flat=True)) == [Contract.Status.PRESIGNED]


def test_nul_in_an_unknown_event_resource_is_stored_escaped(papay, sandbox):
    notification = sandbox.notification("ECOMMERCE_ENTRUST.SOMETHING_NEW", {"mchid": MCHID, "note": "a\x00b"})
    assert deliver(notification).status_code == 204
    assert Notification.objects.get().resource == {"mchid": MCHID, "note": "a\\x00b"}


def test_unexpected_error_while_verifying_is_recorded_as_failed(papay, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("django_papay.notifications.verify", broken)
    assert _post(b"{}").status_code == 500
    delivery = Notification.objects.get()
    assert (delivery.result, delivery.error) == ("failed", "RuntimeError: a bug of ours")

"""The notify view on sites that differ from the suite's: login required everywhere, huge headers from a
proxy or a prober, a database that cannot store the delivery."""

from __future__ import annotations

import logging

import django
import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from django_papay import views, wechatpay
from django_papay.models import Contract, Notification

from .helpers import deliver, orm_notify_path

pytestmark = pytest.mark.django_db
NOTIFY = reverse("django_papay:notify")


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1")
def test_notify_answers_wechat_pay_on_a_site_that_requires_login_everywhere(settings, presigned_contract, sandbox):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    response = deliver(sandbox.sign_notification(presigned_contract.out_contract_code))
    assert response.status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED


def test_notify_is_marked_login_not_required_on_every_django():
    assert views.notify.login_required is False


def test_a_huge_header_is_stored_cut_and_the_row_says_so(papay):
    response = Client().post(NOTIFY, b"{}", content_type="application/json", headers={"X-Junk": "a" * 5_000_000})
    assert response.status_code == 401
    headers = Notification.objects.get().headers
    assert len(headers["X-Junk"]) == views.MAX_HEADER_VALUE_CHARS + 1
    assert "X-Junk (5000000 characters)" in headers[views.CUT_HEADERS_KEY]


def test_headers_past_the_total_are_left_out_and_named(papay):
    many = {f"X-Junk-{n}": "b" * 1000 for n in range(40)}
    Client().post(NOTIFY, b"{}", content_type="application/json", headers=many)
    headers = Notification.objects.get().headers
    assert sum(len(name) + len(value) for name, value in headers.items()) < 2 * views.MAX_STORED_HEADERS_CHARS
    assert "headers left out" in headers[views.CUT_HEADERS_KEY] and "X-Junk-39" in headers[views.CUT_HEADERS_KEY]


def test_ordinary_headers_are_stored_whole_without_a_cut_note(presigned_contract, sandbox):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    deliver(notification)
    headers = Notification.objects.get().headers
    assert headers[wechatpay.SIGNATURE_HEADER] == notification.headers[wechatpay.SIGNATURE_HEADER]
    assert views.CUT_HEADERS_KEY not in headers


def test_a_delivery_the_database_cannot_store_is_logged_with_its_traceback(
    presigned_contract, sandbox, monkeypatch, caplog
):
    def locked(self, *args, **kwargs):
        raise OperationalError("database is locked")

    orm_notify_path(monkeypatch)  # the row is written by Notification.save on every database
    monkeypatch.setattr(Notification, "save", locked)
    with caplog.at_level(logging.ERROR, logger="django_papay.notifications"):
        response = deliver(sandbox.sign_notification(presigned_contract.out_contract_code))
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "django_papay.notifications"]
    assert "could not be stored" in record.getMessage()
    assert record.exc_info is not None and "database is locked" in str(record.exc_info[1])


def test_a_flood_of_forgeries_is_logged_once_with_a_count_and_not_by_django(
    presigned_contract, sandbox, keys, monkeypatch, caplog
):
    from django_papay.services import notifications as pipeline

    monkeypatch.setattr(pipeline, "_rejections", pipeline._Rejections())  # no earlier test's last warning
    forged = sandbox.sign_notification(presigned_contract.out_contract_code).signed_again(private_key=keys.stranger)
    with caplog.at_level(logging.WARNING):
        assert [deliver(forged.signed_again()).status_code for _ in range(3)] == [401] * 3
        monkeypatch.setattr(pipeline, "REJECTION_LOG_SECONDS", 0.0)  # the window has passed
        assert deliver(forged.signed_again()).status_code == 401
    ours = [r.getMessage() for r in caplog.records if r.name == "django_papay.notifications"]
    assert len(ours) == 2 and "the signature does not verify" in ours[0]
    assert ours[1].endswith("(2 more rejected since the last warning)")
    assert [r for r in caplog.records if r.name == "django.request"] == []  # no "Unauthorized: …" per delivery
    assert Notification.objects.filter(result="rejected").count() == 4  # each one stored all the same


def test_django_still_logs_a_refusal_of_a_signed_delivery(presigned_contract, sandbox, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = deliver(sandbox.sign_notification(presigned_contract.out_contract_code, attach="a\x00b"))
    assert response.status_code == 400
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [f"Bad Request: {NOTIFY}"]

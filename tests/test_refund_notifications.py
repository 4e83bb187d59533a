"""REFUND.SUCCESS, .ABNORMAL and .CLOSED at the one notify view: verified, stored, matched against our refunds,
applied once under the lock in any order relative to queries and repeats; signals after the commit."""

import pytest
from django.db import connection

from django_papay import wechatpay
from django_papay.models import Deduction, Notification, Refund
from django_papay.services import deduct, refund, retry_abnormal_refund, settle_refund
from django_papay.signals import refund_failed, refund_succeeded

from .helpers import MCHID, MEMBERSHIP, SignalRecorder, deliver, failing_receiver, in_parallel

pytestmark = pytest.mark.django_db


@pytest.fixture
def membership(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


@pytest.fixture
def refunds():
    with SignalRecorder(succeeded=refund_succeeded, failed=refund_failed) as received:
        yield received


@pytest.fixture
def made(membership, sandbox):
    """A refund WeChat Pay accepted and made (the sandbox's REFUND.SUCCESS is not delivered here)."""
    accepted = refund(membership, 500)
    assert accepted.status == Refund.Status.PROCESSING
    return accepted


def test_refund_success_is_applied_once_when_delivered_twice(made, sandbox, refunds):
    notification = sandbox.refund_notification(made.out_refund_no)
    assert notification.event_type == wechatpay.REFUND_SUCCESS_EVENT
    assert deliver(notification).status_code == 204
    assert deliver(notification.signed_again()).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED and made.success_time is not None
    assert made.user_received_account == notification.resource["user_received_account"]
    first, second = Notification.objects.order_by("pk")
    assert (first.result, second.result) == ("applied", "duplicate")
    assert first.refund_id == made.pk and first.resource["out_refund_no"] == made.out_refund_no
    assert refunds == [("succeeded", made.pk, first)]


def test_the_sandbox_sends_refund_success_to_the_notify_url(made, sandbox):
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not sandbox.deliveries:
        time.sleep(0.05)
    (delivery,) = sandbox.deliveries  # to merchant.example: not loopback, so logged and not posted
    assert delivery.event_type == wechatpay.REFUND_SUCCESS_EVENT and delivery.url.endswith("/papay/notify/")


def test_a_notification_after_the_query_settled_it_changes_nothing(made, sandbox, refunds):
    settle_refund(made)
    assert deliver(sandbox.refund_notification(made.out_refund_no)).status_code == 204
    assert Notification.objects.get().result == "ignored"
    assert refunds == [("succeeded", made.pk, None)]


def test_a_query_after_the_notification_changes_nothing(made, sandbox, refunds):
    deliver(sandbox.refund_notification(made.out_refund_no))
    settle_refund(made)  # final already: not even asked
    assert refunds == [("succeeded", made.pk, Notification.objects.get())]


def test_closed_after_success_is_ignored(made, sandbox, refunds):
    deliver(sandbox.refund_notification(made.out_refund_no))
    closed = sandbox.refund_notification(made.out_refund_no, event_type=wechatpay.REFUND_CLOSED_EVENT)
    assert deliver(closed).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED and [kind for kind, _, _ in refunds] == ["succeeded"]


def test_abnormal_is_shown_and_re_driven_then_success_arrives(membership, sandbox, refunds):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = refund(membership, 500)
    assert deliver(sandbox.refund_notification(made.out_refund_no)).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.ABNORMAL and made.abnormal_at is not None
    retry_abnormal_refund(made)
    assert made.status == Refund.Status.PROCESSING
    deliver(sandbox.refund_notification(made.out_refund_no))  # the sandbox ended it SUCCESS
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED
    assert [kind for kind, _, _ in refunds] == ["failed", "succeeded"]


def test_a_failed_refund_reported_refunded_is_succeeded(made, sandbox, refunds):
    Refund.objects.filter(pk=made.pk).update(status=Refund.Status.FAILED, last_error="INVALID_REQUEST: no")
    deliver(sandbox.refund_notification(made.out_refund_no))
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED and "INVALID_REQUEST" in made.last_error
    assert [kind for kind, _, _ in refunds] == ["succeeded"]


def test_a_refund_we_never_asked_for_is_rejected_and_stored_nothing_created(made, sandbox, refunds):
    stranger = sandbox.refund_notification(made.out_refund_no, out_refund_no="R-NOT-OURS")
    assert deliver(stranger).status_code == 400
    delivery = Notification.objects.get()
    assert (delivery.verified, delivery.result, delivery.refund) == (True, "rejected", None)
    assert "unknown_refund" in delivery.error
    assert Refund.objects.count() == 1 and refunds == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": {"refund": 1500, "total": 1500, "payer_refund": 1500, "payer_total": 1500}},
        {"sub_mchid": "1900000999"},
        {"sp_mchid": "1900000999"},
        {"out_trade_no": "SOMEONE-ELSES-ORDER"},
        {"refund_id": "50300000000000000000000000000000"},
        {"transaction_id": "4200000000000000000000000000"},
        {"amount": {"refund": "500"}},
        {"out_refund_no": None},
    ],
    ids=["amount", "sub_mchid", "sp_mchid", "out_trade_no", "refund_id", "transaction_id", "amount type", "no number"],
)
def test_a_notification_that_does_not_match_our_refund_is_rejected(made, sandbox, refunds, overrides):
    assert deliver(sandbox.refund_notification(made.out_refund_no, **overrides)).status_code == 400
    made.refresh_from_db()
    assert made.status == Refund.Status.PROCESSING and refunds == []
    assert Notification.objects.get().result == "rejected"


def test_a_forged_refund_success_is_rejected(made, sandbox, keys, refunds):
    from django_papay.sandbox.outgoing import build

    genuine = sandbox.refund_notification(made.out_refund_no)
    forged = build(
        genuine.event_type,
        genuine.resource,
        url=genuine.url,
        apiv3_key=keys.apiv3_key,
        private_key=keys.stranger,
        serial=wechatpay.PUBLIC_KEY_ID_PREFIX + "FORGED",
        associated_data=wechatpay.REFUND_ASSOCIATED_DATA,
    )
    assert deliver(forged).status_code >= 400
    made.refresh_from_db()
    assert made.status == Refund.Status.PROCESSING and refunds == []


def test_a_receiver_that_raises_undoes_nothing(made, sandbox):
    with failing_receiver(refund_succeeded, RuntimeError("the CRM is down")):
        assert deliver(sandbox.refund_notification(made.out_refund_no)).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED and Notification.objects.get().result == "applied"


def test_the_resource_is_sealed_as_a_refund(made, sandbox):
    notification = sandbox.refund_notification(made.out_refund_no)
    assert notification.envelope["resource"]["original_type"] == "refund"
    assert notification.resource["sp_mchid"] == MCHID and notification.resource["refund_status"] == "SUCCESS"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks (PAPAY_TEST_DATABASE)")
def test_parallel_deliveries_of_one_refund_success_apply_it_once(made, sandbox, refunds):
    notification = sandbox.refund_notification(made.out_refund_no)
    statuses = in_parallel([lambda: deliver(notification.signed_again()).status_code] * 10)
    assert statuses == [204] * 10
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED
    results = sorted(Notification.objects.values_list("result", flat=True))
    assert results == ["applied"] + ["duplicate"] * 9
    assert [kind for kind, _, _ in refunds] == ["succeeded"]


# --- the protocol's typing of a REFUND.* resource (pure) ------------------------------------------------------

RESOURCE = {
    "sp_mchid": MCHID,
    "sub_mchid": "1900000201",
    "transaction_id": "4200000000000000000000000001",
    "out_trade_no": "T1",
    "refund_id": "50300000000000000000000000000001",
    "out_refund_no": "R1",
    "refund_status": "SUCCESS",
    "success_time": "2026-12-02T18:00:00+08:00",
    "user_received_account": "支付用户零钱",
    "amount": {"total": 1500, "refund": 500, "payer_total": 1500, "payer_refund": 500},
}


def _event(**changes):
    from django_papay.notifications import VerifiedNotification, refund_event

    resource = {key: value for key, value in {**RESOURCE, **changes}.items() if value is not None}
    return refund_event(VerifiedNotification("id", wechatpay.REFUND_SUCCESS_EVENT, {}, resource))


def test_a_refund_resource_is_typed():
    event = _event()
    assert (event.out_refund_no, event.amount_refund, event.amount_total) == ("R1", 500, 1500)
    assert event.success_time is not None and event.success_time.utcoffset().total_seconds() == 8 * 3600
    assert event.user_received_account == "支付用户零钱"


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": None},
        {"amount": {"refund": True}},
        {"amount": {"refund": 0}},
        {"amount": {"refund": 1, "total": "1500"}},
        {"out_refund_no": "R" * 65},
        {"out_refund_no": None},
        {"refund_id": None},
        {"sub_mchid": "19 00"},
        {"success_time": "yesterday"},
        {"user_received_account": "bad\x00"},
    ],
    ids=repr,
)
def test_a_refund_resource_that_is_not_wechat_pays_is_refused(changes):
    from django_papay.exceptions import InvalidNotification

    with pytest.raises(InvalidNotification):
        _event(**changes)

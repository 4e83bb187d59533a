"""Answers that come late, twice, or cannot be stored: a charge WeChat Pay took is never recorded failed or lost.

Over real HTTP to the sandbox. A deduct call whose request reaches WeChat Pay late (``late_arrival``) or whose
answer is held back (``timeout``) runs in a thread while the test settles the same deduction.
"""

import logging
import threading
import time
import traceback
from datetime import timedelta
from functools import partial
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F

from django_papay import wechatpay
from django_papay.models import Deduction
from django_papay.services import deduct, reverse_deduction, settle
from django_papay.services.deductions import deduct_call_timeout
from django_papay.services.turns import in_turn  # SQLite: the sending thread writes while we look
from django_papay.signals import deduction_succeeded

from .helpers import MEMBERSHIP, in_parallel


def deduct_posts(sandbox):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == wechatpay.DEDUCT_PATH]


def in_flight(contract, sandbox, fault, *, delay=1.5):
    """Start charging ``contract`` in a thread whose call ``fault`` holds for ``delay`` s; the deduction once sent
    (and, for ``timeout``, once the sandbox has taken the charge it holds the answer of)."""
    sandbox.fault_delay = delay
    sandbox.fail_next(fault)
    result = {}

    def charge():
        try:
            result["deduction"] = deduct(contract, [MEMBERSHIP])
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=charge)
    thread.start()
    deadline = time.monotonic() + 10
    while (
        not (sent := in_turn(Deduction.objects.filter(status=Deduction.Status.PROCESSING).first))
        or sandbox.faults.names()  # the deduct call has not taken its fault yet
        or (fault == "timeout" and sandbox.deductions.get(sent.combine_out_trade_no) is None)
    ):
        assert time.monotonic() < deadline, "the deduction was never sent"
        time.sleep(0.02)
    return sent, thread, result


# --- a send that may still be in flight ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_settle_during_a_slow_send_never_fails_a_charge_the_sandbox_took(signed_contract, sandbox, papay, charges):
    papay["DEDUCT_TIMEOUT"] = 10
    deduction, thread, result = in_flight(signed_contract, sandbox, "late_arrival")
    # A minute after sending, by the clock: but the call is still open, so WeChat Pay may still receive it.
    settle(deduction, now=deduction.sent_at + wechatpay.DEDUCT_WINDOW + timedelta(seconds=1))
    assert deduction.status == Deduction.Status.PROCESSING and "ORDER_NOT_EXIST" in deduction.last_error
    thread.join(timeout=20)
    assert result["deduction"].status == Deduction.Status.SUCCEEDED
    assert charges == [("succeeded", deduction.pk, None)]
    assert len(deduct_posts(sandbox)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_settle_waits_out_the_minute_from_the_end_of_the_call_not_from_sending(signed_contract, sandbox, papay):
    papay["DEDUCT_TIMEOUT"] = 1
    sandbox.fail_next("system_error")  # never received
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.sent_at < deduction.reachable_until < deduction.sent_at + timedelta(seconds=1)
    settle(deduction, now=deduction.reachable_until + wechatpay.DEDUCT_WINDOW - timedelta(seconds=1))
    assert deduction.status == Deduction.Status.PROCESSING
    settle(deduction, now=deduction.reachable_until + wechatpay.DEDUCT_WINDOW)
    assert deduction.status == Deduction.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_sender_that_died_is_waited_for_until_its_timeouts_and_the_minute_have_passed(
    signed_contract, sandbox, papay
):
    papay["DEDUCT_TIMEOUT"] = 30
    sandbox.fail_next("system_error")
    deduction = deduct(signed_contract, [MEMBERSHIP])
    # As a worker killed during the call leaves it: sent, its end never recorded (nor, before 0007, its reach).
    Deduction.objects.filter(pk=deduction.pk).update(reachable_until=None)
    deduction.refresh_from_db()
    connect, read = deduct_call_timeout()
    assert read == 30
    horizon = deduction.sent_at + timedelta(seconds=connect + read) + wechatpay.DEDUCT_WINDOW
    settle(deduction, now=horizon)
    assert deduction.status == Deduction.Status.PROCESSING
    settle(deduction, now=horizon + timedelta(seconds=10))
    assert deduction.status == Deduction.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_late_verified_success_for_a_failed_deduction_is_never_lost(signed_contract, sandbox, papay, charges, caplog):
    papay["DEDUCT_TIMEOUT"] = 10
    deduction, thread, result = in_flight(signed_contract, sandbox, "late_arrival")
    # A settle whose clock is far ahead concludes "never received"; then WeChat Pay charges and answers.
    settle(deduction, now=deduction.sent_at + timedelta(hours=1))
    assert deduction.status == Deduction.Status.FAILED
    with caplog.at_level(logging.ERROR, logger="django_papay.deductions"):
        thread.join(timeout=20)
    deduction.refresh_from_db()
    assert result["deduction"].status == deduction.status == Deduction.Status.SUCCEEDED
    assert deduction.corrected_from == Deduction.Status.FAILED
    assert "charged the user after this deduction was recorded failed" in deduction.last_error
    assert "never received" in deduction.last_error  # and why it had been recorded so
    assert {s.trade_state for s in deduction.sub_orders.all()} == {"SUCCESS"}
    assert charges == [("failed", deduction.pk, None), ("succeeded", deduction.pk, None)]
    assert any("corrected_from=failed" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_the_corrected_success_signal_says_what_it_corrects(signed_contract, sandbox, papay):
    papay["DEDUCT_TIMEOUT"] = 10
    seen = []

    def receiver(sender, deduction, **kwargs):
        seen.append(kwargs.get("corrected_from"))

    deduction_succeeded.connect(receiver)
    try:
        deduction, thread, _ = in_flight(signed_contract, sandbox, "late_arrival")
        settle(deduction, now=deduction.sent_at + timedelta(hours=1))
        thread.join(timeout=20)
    finally:
        deduction_succeeded.disconnect(receiver)
    assert seen == [Deduction.Status.FAILED]


@pytest.mark.django_db(transaction=True)
def test_a_stale_accept_answer_never_overwrites_the_reversed_state(signed_contract, sandbox, papay):
    papay["DEDUCT_TIMEOUT"] = 10
    sandbox.deductions.trade_state = "ACCEPT"
    deduction, thread, _ = in_flight(signed_contract, sandbox, "timeout")  # processed, answer held back
    settle(deduction, now=deduction.sent_at + timedelta(hours=1))  # ACCEPT past the minute: reversed
    assert deduction.status == Deduction.Status.REVERSED
    thread.join(timeout=20)  # then the deduct call's own answer arrives: ACCEPT
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.REVERSED
    assert {s.trade_state for s in deduction.sub_orders.all()} == {"REVOKED"}


# --- a reverse whose sender died ---------------------------------------------------------


@pytest.mark.django_db
def test_a_reverse_whose_worker_died_settles_reversed_not_failed(signed_contract, sandbox, charges):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP])
    # The worker claimed the reverse and WeChat Pay revoked the charge; the worker was killed before recording it.
    Deduction.objects.filter(pk=deduction.pk).update(reverse_requested_at=deduction.sent_at)
    sandbox.deductions.reverse(deduction.combine_out_trade_no)
    settle(deduction, now=deduction.reachable_until + wechatpay.DEDUCT_WINDOW)
    assert deduction.status == Deduction.Status.REVERSED
    assert charges == [("failed", deduction.pk, None)]


# --- answers that cannot be stored, receivers that raise --------------------------------


def _sub_order(field, value):
    def change(payload):
        sub = payload["sub_orders"][0]
        if field == "payer_amount":
            sub.setdefault("amount", {})["payer_amount"] = value
        else:
            sub[field] = value

    return change


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [("transaction_id", "4200\x00123"), ("trade_state", "SUC\x00CESS")])
def test_an_answer_whose_numbers_cannot_be_stored_leaves_it_processing_with_the_error(
    signed_contract, sandbox, field, value
):
    sandbox.alter_next(_sub_order(field, value))
    deduction = deduct(signed_contract, [MEMBERSHIP])  # never raises once the call is made
    assert deduction.status == Deduction.Status.PROCESSING and "ANSWER_UNSTORABLE" in deduction.last_error
    assert f"sub_orders[0].{field}" in deduction.last_error
    assert {s.trade_state for s in deduction.sub_orders.all()} == {""}  # nothing of it stored
    assert settle(deduction).status == Deduction.Status.SUCCEEDED  # asked again: a good answer
    assert len(deduct_posts(sandbox)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value", [("payer_amount", 2**63), ("bank_type", "CMB\x00"), ("success_time", "yesterday")]
)
def test_a_field_that_cannot_be_stored_is_left_out_and_said_so(signed_contract, sandbox, field, value):
    sandbox.alter_next(_sub_order(field, value))
    deduction = deduct(signed_contract, [MEMBERSHIP])
    (sub_order,) = deduction.sub_orders.all()
    assert deduction.status == Deduction.Status.SUCCEEDED and sub_order.transaction_id
    assert "Not stored from WeChat Pay's answer" in deduction.last_error and field in deduction.last_error


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_raises_never_undoes_a_charge_or_makes_deduct_raise(signed_contract, sandbox, caplog):
    def crm_is_down(sender, deduction, **kwargs):
        raise ConnectionError("CRM is down")

    deduction_succeeded.connect(crm_is_down)
    try:
        with caplog.at_level(logging.ERROR, logger="django_papay.deductions"):
            deduction = deduct(signed_contract, [MEMBERSHIP])
    finally:
        deduction_succeeded.disconnect(crm_is_down)
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert any("CRM is down" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_papay_settle_goes_on_past_a_deduction_whose_answer_cannot_be_stored(signed_contract, sandbox):
    numbers = []
    for _ in range(3):
        sandbox.fail_next("system_error_after")  # charged, answered 500: settled by the command
        numbers.append(deduct(signed_contract, [MEMBERSHIP]).combine_out_trade_no)
    ago = timedelta(minutes=5)
    Deduction.objects.update(sent_at=F("sent_at") - ago, reachable_until=F("reachable_until") - ago)
    bad, odd, good = numbers  # oldest first: the bad one is the first the command meets

    def change(payload):
        if payload["combine_out_trade_no"] == bad:
            payload["sub_orders"][0]["trade_state"] = "SUCCESS\x00"
        if payload["combine_out_trade_no"] == odd:
            payload["sub_orders"][0]["amount"]["payer_amount"] = 2**63

    sandbox.alter_next(change, times=3)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="2 settled, 0 still open, 1 unreachable"):
        call_command("papay_settle", stdout=out, stderr=err)
    assert f"{bad}: still processing" in err.getvalue() and "ANSWER_UNSTORABLE" in err.getvalue()
    statuses = dict(Deduction.objects.values_list("combine_out_trade_no", "status"))
    assert statuses == {bad: "processing", odd: "succeeded", good: "succeeded"}


# --- settle racing a staff reverse on SQLite ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_settle_racing_a_reverse_never_raises_a_raw_lock_error(signed_contract, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    for _ in range(10):
        deduction = deduct(signed_contract, [MEMBERSHIP])
        later = deduction.sent_at + timedelta(hours=1)
        results = in_parallel([partial(settle, deduction, now=later), partial(reverse_deduction, deduction, now=later)])
        raw = [r for r in results if isinstance(r, Exception) and "locked" in str(r)]
        assert raw == [], "".join(traceback.format_exception(raw[0]))
        deduction.refresh_from_db()
        assert deduction.status == Deduction.Status.REVERSED
        reverses = [r for r in sandbox.requests if r.path.endswith(f"{deduction.combine_out_trade_no}/reverse")]
        assert len(reverses) == 1


@pytest.mark.django_db(transaction=True)
def test_staff_find_the_corrected_deduction_in_the_admin(signed_contract, sandbox, papay, staff_client):
    papay["DEDUCT_TIMEOUT"] = 10
    deduction, thread, _ = in_flight(signed_contract, sandbox, "late_arrival")
    settle(deduction, now=deduction.sent_at + timedelta(hours=1))
    thread.join(timeout=20)
    other = deduct(signed_contract, [MEMBERSHIP])  # an ordinary charge, not corrected
    page = staff_client("view_deduction").get("/admin/django_papay/deduction/?corrected=yes")
    html = page.content.decode()
    assert page.status_code == 200
    assert deduction.combine_out_trade_no in html and "(was failed)" in html
    assert other.combine_out_trade_no not in html

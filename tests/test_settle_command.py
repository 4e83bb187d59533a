"""papay_settle, as cron runs it: what a deduct call left open gets settled, and failures show in the exit code."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from django_papay.models import Deduction
from django_papay.services import deduct

from .helpers import MEMBERSHIP

pytestmark = pytest.mark.django_db


def _run(*args):
    out, err = StringIO(), StringIO()
    call_command("papay_settle", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _open(signed_contract, sandbox, fault, seconds_ago):
    sandbox.fail_next(fault)
    deduction = deduct(signed_contract, [MEMBERSHIP])
    ago = timedelta(seconds=seconds_ago)  # sent then, and its call ended then
    Deduction.objects.filter(pk=deduction.pk).update(
        sent_at=F("sent_at") - ago, reachable_until=F("reachable_until") - ago
    )
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.PROCESSING
    return deduction


def test_settle_resolves_what_is_due_and_leaves_recent_ones(signed_contract, sandbox):
    taken = _open(signed_contract, sandbox, "system_error_after", 120)  # charged, answered 500
    lost = _open(signed_contract, sandbox, "system_error", 120)  # never received
    recent = _open(signed_contract, sandbox, "system_error_after", 5)
    out, err = _run()
    assert f"{taken}: processing → succeeded" in out and f"{lost}: processing → failed" in out
    assert str(recent) not in out and err == ""
    assert "2 deductions: 2 settled, 0 still open, 0 unreachable; 1 skipped, sent < 60 s ago" in out
    recent.refresh_from_db()
    assert recent.status == Deduction.Status.PROCESSING


def test_settle_named_numbers_reports_what_must_still_wait(signed_contract, sandbox):
    waiting = _open(signed_contract, sandbox, "system_error", 10)  # not found, but the minute is not over
    out, _ = _run(str(waiting))
    assert f"{waiting}: processing (unchanged) — " in out and "ORDER_NOT_EXIST" in out
    assert "WeChat Pay has not received this charge" in out and "it becomes failed after" in out
    assert "1 deduction: 0 settled, 1 still open, 0 unreachable\n" in out  # named: nothing skipped


def test_settle_says_how_many_it_left_for_being_too_recent(signed_contract, sandbox):
    _open(signed_contract, sandbox, "system_error_after", 5)
    out, _ = _run()
    assert (
        out.strip() == "0 deductions: 0 settled, 0 still open, 0 unreachable; 1 skipped, sent < 60 s ago "
        "(settled by a later run)"
    )


def test_settle_exits_non_zero_when_wechatpay_cannot_be_asked(signed_contract, sandbox):
    deduction = _open(signed_contract, sandbox, "reset", 120)
    sandbox.fail_next("unavailable")
    with pytest.raises(CommandError, match="1 unreachable"):
        _run()
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.PROCESSING and "SERVICE_UNAVAILABLE" in deduction.last_error


def test_settle_refuses_unknown_numbers(papay):
    with pytest.raises(CommandError, match="no deduction with combine_out_trade_no NOPE"):
        _run("NOPE")

"""Refunds at the edges: papay_settle settles them (one line each, a summary, exit 1 when WeChat Pay could not be
asked), and with PAPAY["TASKS"] a task sends and settles them, retrying with backoff, never with a new number."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db.models import F

from django_papay import dispatch, tasks, wechatpay
from django_papay.models import Deduction, Refund
from django_papay.services import deduct, refund

from .helpers import MEMBERSHIP

pytestmark = pytest.mark.django_db


@pytest.fixture
def membership(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


@pytest.fixture
def queued(settings, papay) -> list:
    """PAPAY["TASKS"] on, with a backend that only records what is enqueued (nothing runs)."""
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    return tasks.send_refund.get_backend().results


def enqueued(results: list, task) -> list:
    return [result for result in results if result.task.func is task.func]


def _run(*args):
    out, err = StringIO(), StringIO()
    call_command("papay_settle", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _sent_ago(made: Refund, seconds: int) -> Refund:
    Refund.objects.filter(pk=made.pk).update(sent_at=F("sent_at") - timedelta(seconds=seconds))
    made.refresh_from_db()
    return made


def applies(sandbox, number):
    return [
        r for r in sandbox.requests if r.path == wechatpay.REFUND_APPLY_PATH and r.json()["out_refund_no"] == number
    ]


# --- papay_settle ---------------------------------------------------------------------------------------------


def test_settle_settles_processing_refunds_one_line_each(membership, sandbox):
    accepted = _sent_ago(refund(membership, 500), 120)
    sandbox.fail_next("system_error")
    lost = _sent_ago(refund(membership, 300), 120)  # never reached WeChat Pay: sent again, same number
    recent = refund(membership, 100)
    out, err = _run()
    assert f"refund {accepted}: processing → succeeded" in out
    assert f"refund {lost}: processing (unchanged)" in out and err == ""
    assert str(recent) not in out
    assert "2 refunds: 1 settled, 1 still open, 0 unreachable" in out
    assert len(applies(sandbox, lost.out_refund_no)) == 2


def test_settle_names_a_refund_by_its_number(membership, sandbox):
    made = refund(membership, 500)
    out, _ = _run(made.out_refund_no)
    assert f"refund {made}: processing → succeeded" in out and "deductions" not in out


def test_settle_exits_non_zero_when_wechatpay_cannot_be_asked_about_a_refund(membership, sandbox):
    made = _sent_ago(refund(membership, 500), 120)
    sandbox.fail_next("unavailable")
    with pytest.raises(CommandError, match="1 refund: 0 settled, 0 still open, 1 unreachable"):
        _run()
    made.refresh_from_db()
    assert made.status == Refund.Status.PROCESSING and "SERVICE_UNAVAILABLE" in made.last_error


def test_settle_with_tasks_queues_the_refunds(membership, sandbox, queued):
    made = _sent_ago(refund(membership, 500), 120)
    out, _ = _run()
    assert "1 refund queued to be settled" in out
    (settle,) = enqueued(queued, tasks.settle_refund)
    assert settle.args == [made.pk]


# --- tasks ---------------------------------------------------------------------------------------------------


def test_refund_one_with_tasks_stores_it_and_enqueues_its_send(membership, sandbox, queued):
    made = dispatch.refund_one(membership, 500)
    assert made.status == Refund.Status.CREATED and not applies(sandbox, made.out_refund_no)
    (send,) = enqueued(queued, tasks.send_refund)
    assert send.args == [made.pk]


def test_refund_one_on_the_immediate_backend_sends_it_once(membership, sandbox, papay):
    papay["TASKS"] = True
    made = dispatch.refund_one(membership, 500)
    made.refresh_from_db()
    assert made.status == Refund.Status.PROCESSING and len(applies(sandbox, made.out_refund_no)) == 1
    assert tasks.send_refund.call(made.pk) == Refund.Status.PROCESSING  # a second run sends nothing
    assert len(applies(sandbox, made.out_refund_no)) == 1


def test_the_send_task_settles_it_later(membership, sandbox, queued):
    made = dispatch.refund_one(membership, 500)
    assert tasks.send_refund.call(made.pk) == Refund.Status.PROCESSING
    (settle,) = enqueued(queued, tasks.settle_refund)
    assert settle.args == [made.pk] and settle.task.run_after is not None


def test_the_settle_task_retries_with_backoff_and_never_changes_the_number(membership, sandbox, queued):
    sandbox.fail_next("system_error")
    made = refund(membership, 500)
    number = made.out_refund_no
    sandbox.fail_next("unavailable")
    assert tasks.settle_refund.call(made.pk).startswith("not settled")
    (retry,) = enqueued(queued, tasks.settle_refund)
    assert retry.kwargs == {"attempt": 1} and retry.task.run_after is not None
    assert tasks.settle_refund.call(made.pk, attempt=1) == Refund.Status.PROCESSING  # sent again: accepted
    assert tasks.settle_refund.call(made.pk, attempt=2) == Refund.Status.SUCCEEDED
    assert [r.json()["out_refund_no"] for r in sandbox.requests if r.path == wechatpay.REFUND_APPLY_PATH] == [
        number,
        number,
    ]
    assert Refund.objects.get().out_refund_no == number


def test_the_fan_out_task_enqueues_one_settle_per_open_refund(membership, sandbox, queued):
    made = _sent_ago(refund(membership, 500), 120)
    assert tasks.settle_open_refunds.call() == 1
    assert [result.args for result in enqueued(queued, tasks.settle_refund)] == [[made.pk]]


def test_refund_one_refuses_bad_input_with_nothing_stored_or_enqueued(membership, sandbox, queued):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        dispatch.refund_one(membership, 1501)
    assert not Refund.objects.exists() and enqueued(queued, tasks.send_refund) == []

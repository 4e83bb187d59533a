"""The tasks (django_papay/tasks.py) run by Django's ImmediateBackend, or enqueued on the DummyBackend to see
what would run later: every charge sent once, retries only for calls that are safe to repeat."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from django_papay import tasks, wechatpay
from django_papay.dispatch import deduct_many
from django_papay.models import CallWindow, Contract, Deduction
from django_papay.services import Charge, ratelimit
from django_papay.services.deductions import store

from .helpers import SUB_ORDERS


@pytest.fixture
def queued(settings, papay) -> list:
    """PAPAY["TASKS"] on, with a backend that only records what is enqueued (nothing runs)."""
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    return tasks.send_deduction.get_backend().results


def enqueued(results: list, task) -> list:
    return [result for result in results if result.task.func is task.func]


def test_billing_run_on_the_immediate_backend_charges_each_deduction_once(papay, sandbox, signed_contract, charges):
    papay["TASKS"] = True
    planned = deduct_many([Charge(signed_contract, SUB_ORDERS) for _ in range(5)], label="May")
    numbers = list(planned.run.deductions.values_list("combine_out_trade_no", flat=True))
    assert planned.queued and not planned.refused and len(numbers) == 5
    assert set(planned.run.deductions.values_list("status", flat=True)) == {Deduction.Status.SUCCEEDED}
    assert [sandbox.deductions.posts[number] for number in numbers] == [1] * 5
    assert len(charges) == 5


def test_billing_run_refuses_an_unsigned_contract_and_charges_the_others(papay, sandbox, signed_contract, contract):
    planned = deduct_many([Charge(contract, SUB_ORDERS), Charge(signed_contract, SUB_ORDERS)])
    assert [charge.contract for charge, _error in planned.refused] == [contract]
    assert not planned.queued  # TASKS off: sent here, one after another
    assert list(planned.run.deductions.values_list("status", flat=True)) == [Deduction.Status.SUCCEEDED]


def test_send_task_run_twice_sends_the_charge_once(papay, sandbox, signed_contract):
    deduction = store(signed_contract, SUB_ORDERS)
    assert tasks.send_deduction.call(deduction.pk) == Deduction.Status.SUCCEEDED
    assert tasks.send_deduction.call(deduction.pk) == "already sent"
    assert sandbox.deductions.posts[deduction.combine_out_trade_no] == 1


def test_rate_limited_send_stays_processing_and_is_settled_later_never_sent_again(queued, sandbox, signed_contract):
    deduction = store(signed_contract, SUB_ORDERS)
    sandbox.fail_next("ratelimit")
    assert tasks.send_deduction.call(deduction.pk) == Deduction.Status.PROCESSING
    assert enqueued(queued, tasks.send_deduction) == []
    (settle,) = enqueued(queued, tasks.settle_deduction)
    assert settle.args == [deduction.pk] and settle.task.run_after is not None
    assert tasks.send_deduction.call(deduction.pk) == "already sent"
    assert sum(1 for request in sandbox.requests if request.path == wechatpay.DEDUCT_PATH) == 1


def test_server_error_on_a_contract_query_is_retried_later_with_backoff(queued, sandbox, presigned_contract):
    sandbox.fail_next("system_error")
    result = tasks.query_contract.call(presigned_contract.pk)
    assert result.startswith("retry 1")
    (retry,) = enqueued(queued, tasks.query_contract)
    assert retry.args == [presigned_contract.pk] and retry.kwargs == {"attempt": 1}
    assert retry.task.run_after is not None
    assert Contract.objects.get(pk=presigned_contract.pk).last_error.startswith("SYSTEM_ERROR")


def test_settle_task_comes_back_while_the_charge_is_not_at_wechat_pay_yet(queued, sandbox, signed_contract):
    deduction = store(signed_contract, SUB_ORDERS)
    Deduction.objects.filter(pk=deduction.pk).update(status=Deduction.Status.PROCESSING, sent_at=deduction.created_at)
    assert tasks.settle_deduction.call(deduction.pk) == Deduction.Status.PROCESSING  # 404 within the minute
    (again,) = enqueued(queued, tasks.settle_deduction)
    assert again.kwargs == {"attempt": 1}
    assert sandbox.deductions.posts[deduction.combine_out_trade_no] == 0


def test_send_task_in_a_full_second_comes_back_next_second_without_claiming(queued, sandbox, signed_contract):
    queued_papay = django_settings.PAPAY
    queued_papay["MAX_CALLS_PER_SECOND"] = 1
    now = int(time.time())
    CallWindow.objects.bulk_create([CallWindow(second=second, calls=1) for second in range(now - 1, now + 10)])
    deduction = store(signed_contract, SUB_ORDERS)
    assert tasks.send_deduction.call(deduction.pk).startswith("rate limited")
    assert Deduction.objects.get(pk=deduction.pk).status == Deduction.Status.CREATED
    (again,) = enqueued(queued, tasks.send_deduction)
    assert again.args == [deduction.pk] and again.task.run_after is not None
    assert sandbox.deductions.posts[deduction.combine_out_trade_no] == 0


def test_take_turn_lets_max_calls_per_second_through_and_counts_them_in_the_database(papay, db):
    papay["MAX_CALLS_PER_SECOND"] = 3
    moment = 1_800_000_000.25
    assert [ratelimit.take_place(moment) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert ratelimit.take_place(moment) == pytest.approx(0.75)
    assert CallWindow.objects.get(second=1_800_000_000).calls == 3


def test_billing_run_fan_out_enqueues_every_created_deduction_once_in_batches(queued, sandbox, signed_contract):
    planned = deduct_many([Charge(signed_contract, SUB_ORDERS) for _ in range(tasks.SEND_BATCH + 3)])
    assert enqueued(queued, tasks.send_billing_run)[0].args == [planned.run.pk]
    assert tasks.send_billing_run.call(planned.run.pk) == tasks.SEND_BATCH + 3
    batches = [result.args[0] for result in enqueued(queued, tasks.send_deductions)]
    assert [len(batch) for batch in batches] == [tasks.SEND_BATCH, 3]
    assert sorted(pk for batch in batches for pk in batch) == sorted(
        planned.run.deductions.values_list("pk", flat=True)
    )
    assert planned.run.deductions.filter(queued_at__isnull=False).count() == tasks.SEND_BATCH + 3


def test_a_send_batch_that_meets_a_full_second_sends_the_rest_next_second(queued, sandbox, signed_contract):
    django_settings.PAPAY["MAX_CALLS_PER_SECOND"] = 1
    first, second, third = (store(signed_contract, SUB_ORDERS) for _ in range(3))
    time.sleep(1 - time.time() % 1)  # at the start of a second: the batch's first send falls in it
    now = int(time.time())
    CallWindow.objects.bulk_create([CallWindow(second=second, calls=1) for second in range(now + 1, now + 10)])
    CallWindow.objects.create(second=now, calls=0)  # one place left, in this second only
    outcome = tasks.send_deductions.call([first.pk, second.pk, third.pk])
    assert outcome == f"{Deduction.Status.SUCCEEDED}, {tasks.RATE_LIMITED}"
    (again,) = enqueued(queued, tasks.send_deductions)
    assert again.args == [[second.pk, third.pk]] and again.task.run_after is not None
    assert [sandbox.deductions.posts[d.combine_out_trade_no] for d in (first, second, third)] == [1, 0, 0]

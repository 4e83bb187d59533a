"""MAX_CALLS_PER_SECOND holds for every WeChat Pay call: one place per call, wherever it is made.

Counted where it matters, at the sandbox: the calls it received in each wall-clock second (``received_at``),
never more than the limit, and as many places taken in the ``CallWindow`` rows as calls received.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from django_papay import tasks, wechatpay
from django_papay.models import CallWindow, Contract, Deduction
from django_papay.services import PRESIGN, deduct, ratelimit, run_many, settle_many

from .helpers import MEMBERSHIP, PLAN_ID, signed_contracts

pytestmark = pytest.mark.django_db

LIMIT = 3


def limited(papay: dict, sandbox) -> None:
    """From now on at most LIMIT calls a second; the calls and places so far are forgotten.

    Starts just after a second begins: a place taken at the very end of a second is sent in the next one,
    which then receives one call more than it counted (the counting is per host clock, to the second).
    """
    papay["MAX_CALLS_PER_SECOND"] = LIMIT
    CallWindow.objects.all().delete()
    sandbox.requests.clear()
    time.sleep(1.02 - time.time() % 1)


def busiest_second(sandbox) -> int:
    return max(Counter(int(request.received_at) for request in sandbox.requests).values())


def places_taken() -> int:
    return CallWindow.objects.aggregate(calls=Sum("calls"))["calls"] or 0


def processing_past_the_minute(contract: Contract, sandbox) -> Deduction:
    """A charge WeChat Pay holds in ACCEPT, sent long enough ago that settling reverses it."""
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    long_ago = timezone.now() - wechatpay.DEDUCT_WINDOW - timedelta(minutes=1)
    Deduction.objects.filter(pk=deduction.pk).update(sent_at=long_ago, reachable_until=long_ago)
    return deduction


def test_the_settle_task_takes_a_place_for_its_query_its_reverse_and_the_query_after(papay, sandbox):
    contract = signed_contracts(sandbox, 1)[0]
    deductions = [processing_past_the_minute(contract, sandbox) for _ in range(2)]
    limited(papay, sandbox)
    for deduction in deductions:
        assert tasks.settle_deduction.call(deduction.pk) == Deduction.Status.REVERSED
    query_path = wechatpay.path(wechatpay.DEDUCTION_PATH, combine_out_trade_no=deductions[0].combine_out_trade_no)
    assert [request.method for request in sandbox.requests] == ["GET", "POST", "GET"] * 2
    assert sandbox.requests[0].path == query_path
    assert busiest_second(sandbox) <= LIMIT
    assert places_taken() == len(sandbox.requests) == 6


def test_charging_a_contract_without_contract_id_takes_a_place_for_its_query_too(papay, sandbox):
    contracts = signed_contracts(sandbox, 2)
    Contract.objects.filter(pk__in=[contract.pk for contract in contracts]).update(contract_id="")
    limited(papay, sandbox)
    for contract in contracts:
        contract.refresh_from_db()
        assert deduct(contract, [MEMBERSHIP]).status == Deduction.Status.SUCCEEDED
    assert [request.method for request in sandbox.requests] == ["GET", "POST"] * 2
    assert busiest_second(sandbox) <= LIMIT
    assert places_taken() == len(sandbox.requests) == 4


def test_the_contract_query_after_contract_not_exist_takes_a_place(papay, sandbox):
    contracts = signed_contracts(sandbox, 2)
    for contract in contracts:
        sandbox.terminate_contract(contract.out_contract_code, drop=True)  # the user ended it; no notification
    limited(papay, sandbox)
    for contract in contracts:
        assert deduct(contract, [MEMBERSHIP]).status == Deduction.Status.FAILED
        assert Contract.objects.get(pk=contract.pk).status == Contract.Status.TERMINATED
    assert [request.method for request in sandbox.requests] == ["POST", "GET"] * 2
    assert busiest_second(sandbox) <= LIMIT
    assert places_taken() == len(sandbox.requests) == 4


def test_a_bulk_settle_takes_a_place_for_each_call_in_flight(papay, sandbox):
    papay["BULK_CONCURRENCY"] = 4
    contract = signed_contracts(sandbox, 1)[0]
    sandbox.deductions.trade_state = "ACCEPT"
    deductions = [deduct(contract, [MEMBERSHIP]) for _ in range(4)]  # within the minute: settling only queries
    limited(papay, sandbox)
    settled = settle_many(deductions)
    assert [result.deduction.status for result in settled] == [Deduction.Status.PROCESSING] * 4
    assert busiest_second(sandbox) <= LIMIT
    assert places_taken() == len(sandbox.requests) == 4


def test_a_bulk_presign_takes_a_place_for_each_call_in_flight(papay, sandbox):
    papay["BULK_CONCURRENCY"] = 4
    contracts = [Contract.objects.create(plan_id=PLAN_ID, contract_display_account=f"u{n}") for n in range(4)]
    limited(papay, sandbox)
    assert all(outcome.ok for outcome in run_many(PRESIGN, contracts))
    assert busiest_second(sandbox) <= LIMIT
    assert places_taken() == len(sandbox.requests) == 4


def test_a_task_s_first_call_uses_the_place_the_task_took_and_no_other(papay, sandbox, presigned_contract):
    limited(papay, sandbox)
    tasks.query_contract.call(presigned_contract.pk)
    assert places_taken() == len(sandbox.requests) == 1


def test_a_task_in_a_full_second_comes_back_later_without_calling(papay, sandbox, settings, presigned_contract):
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    limited(papay, sandbox)
    now = int(time.time())
    CallWindow.objects.bulk_create([CallWindow(second=second, calls=LIMIT) for second in range(now, now + 10)])
    assert tasks.query_contract.call(presigned_contract.pk).startswith("rate limited")
    (again,) = tasks.query_contract.get_backend().results
    assert again.args == [presigned_contract.pk] and again.task.run_after is not None
    assert sandbox.requests == []


def test_a_charge_waits_for_its_place_before_the_claim_so_the_call_follows_it_at_once(papay, sandbox):
    (contract,) = signed_contracts(sandbox, 1)
    limited(papay, sandbox)
    full = int(time.time())
    for _ in range(LIMIT):  # this second's places go to someone else
        assert ratelimit.take_place() == 0.0
    deduction = deduct(contract, [MEMBERSHIP])
    (post,) = [r for r in sandbox.requests if r.method == "POST" and r.path == wechatpay.DEDUCT_PATH]
    # Claimed only once a place was there: the send is not held after the claim, which reachable_until counts from.
    assert deduction.sent_at.timestamp() >= full + 1
    assert post.received_at <= deduction.reachable_until.timestamp()
    assert places_taken() == LIMIT + 1

"""A billing run of 1,000 deductions sent by real worker processes, shared by tests/test_workers.py (the database
worker) and tests/test_rq_workers.py (RQ): start it, watch it, settle what a dead worker left, and check that
every number was charged at most once."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from django.db.models import Max
from django.utils import timezone

from django_papay import wechatpay
from django_papay.dispatch import deduct_many
from django_papay.models import BillingRun, CallWindow, Deduction
from django_papay.services import Charge, settle_many

from .helpers import SUB_ORDERS, signed_contracts

DEDUCTIONS = 1000
CONTRACTS = 10
RATE = 100  # PAPAY["MAX_CALLS_PER_SECOND"], shared by both workers through the database
REPO = Path(__file__).resolve().parent.parent


def stop_all(processes: Iterable[subprocess.Popen], *, timeout: float = 20) -> None:
    """SIGTERM to each still running (a worker finishes the task in hand first), SIGKILL after ``timeout``."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start_run(sandbox) -> BillingRun:
    contracts = signed_contracts(sandbox, CONTRACTS)
    charges = [Charge(contracts[number % CONTRACTS], SUB_ORDERS) for number in range(DEDUCTIONS)]
    planned = deduct_many(charges, label="month end")
    assert planned.queued and planned.run.deductions.count() == DEDUCTIONS
    return planned.run


def sent(run: BillingRun) -> int:
    return run.deductions.exclude(status=Deduction.Status.CREATED).count()


def settle_what_was_left(run: BillingRun) -> int:
    """Claims nobody finished stay PROCESSING: settled once WeChat Pay's minute from their reachable_until passed."""
    statuses = set(run.deductions.values_list("status", flat=True))
    assert statuses <= {Deduction.Status.PROCESSING, Deduction.Status.SUCCEEDED, Deduction.Status.FAILED}
    stuck = list(run.deductions.filter(status=Deduction.Status.PROCESSING))
    last_reach = max((deduction.reachable_until or timezone.now() for deduction in stuck), default=timezone.now())
    settle_many(stuck, now=max(last_reach, timezone.now()) + wechatpay.DEDUCT_WINDOW + timedelta(seconds=1))
    return len(stuck)


def assert_charged_at_most_once(run: BillingRun, sandbox, *, lost_at_most: int) -> None:
    numbers = dict(run.deductions.values_list("combine_out_trade_no", "status"))
    posts = sandbox.deductions.posts
    assert all(posts[number] <= 1 for number in numbers), "a charge was sent twice"
    succeeded = [number for number, status in numbers.items() if status == Deduction.Status.SUCCEEDED]
    assert all(posts[number] == 1 and sandbox.deductions.get(number) for number in succeeded)
    assert len(succeeded) >= DEDUCTIONS - lost_at_most
    assert set(numbers.values()) <= {Deduction.Status.SUCCEEDED, Deduction.Status.FAILED}
    assert CallWindow.objects.aggregate(busiest=Max("calls"))["busiest"] <= RATE

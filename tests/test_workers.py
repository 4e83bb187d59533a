"""A billing run of 1,000 deductions on PostgreSQL, run by two real worker processes (django-tasks-db's
``db_worker``) against the loopback sandbox; one worker is killed with SIGKILL half-way.

Every deduction must be charged at most once (the sandbox counts the POSTs per number), none may be left
outside PROCESSING and the final states, and ``papay_settle``'s settling must finish what the dead worker
left. Runs in the PostgreSQL pass of scripts/test.sh; skipped on SQLite (one writer, no row locks).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from django_papay import wechatpay
from django_papay.dispatch import deduct_many, send_run
from django_papay.models import CallWindow, Deduction
from django_papay.services import Charge, settle_many

from .helpers import SUB_ORDERS, signed_contracts

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL and real worker processes: run with PAPAY_TEST_DATABASE=postgres",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("django_tasks_db") is None,
        reason="needs django-tasks-db, the database worker (the dev extra; it requires Django >= 5.2)",
    ),
]

DEDUCTIONS = 1000
CONTRACTS = 10
RATE = 100  # PAPAY["MAX_CALLS_PER_SECOND"], shared by both workers through the database
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workers(papay, tmp_path, settings) -> Iterator[Callable[[], subprocess.Popen]]:
    """``start()`` starts a ``db_worker`` process on this test's database; all are stopped afterwards."""
    papay.update(TASKS=True, MAX_CALLS_PER_SECOND=RATE)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    config = tmp_path / "papay.json"
    config.write_text(json.dumps(papay))
    env = {
        **os.environ,
        "PAPAY_WORKER_DATABASE": connection.settings_dict["NAME"],
        "PAPAY_WORKER_SETTINGS": str(config),
        "PYTHONPATH": str(REPO),
    }
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        command = [sys.executable, "-m", "django", "db_worker", "--settings", "tests.worker_settings"]
        command += ["--interval", "0.05", "--no-startup-delay", "--no-reload", "--verbosity", "0"]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # db_worker finishes its task, then exits
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_worker_never_causes_a_second_charge(workers, sandbox):
    contracts = signed_contracts(sandbox, CONTRACTS)
    charges = [Charge(contracts[number % CONTRACTS], SUB_ORDERS) for number in range(DEDUCTIONS)]
    planned = deduct_many(charges, label="month end")
    run = planned.run
    assert planned.queued and run.deductions.count() == DEDUCTIONS
    doomed, survivor = workers(), workers()

    def sent() -> int:
        return run.deductions.exclude(status=Deduction.Status.CREATED).count()

    wait_until(lambda: sent() >= DEDUCTIONS // 2, 60, "half the run")
    doomed.send_signal(signal.SIGKILL)  # mid-task, most likely: no chance to finish or clean up
    doomed.wait(timeout=10)
    # A send task the dead worker held is lost with it: resuming the run enqueues the rows still CREATED
    # again, and whichever task claims a row sends it; a row already claimed is never sent again.
    resumed = run.deductions.filter(status=Deduction.Status.CREATED).count()
    send_run(run)
    wait_until(lambda: sent() == DEDUCTIONS, 90, "every deduction sent")

    statuses = set(run.deductions.values_list("status", flat=True))
    assert statuses <= {Deduction.Status.PROCESSING, Deduction.Status.SUCCEEDED, Deduction.Status.FAILED}
    # A claim the dead worker never finished stays PROCESSING: papay_settle settles it, here as once WeChat Pay's
    # minute has passed since the call could last reach it (its reachable_until: the claim plus the deduct timeouts).
    stuck = list(run.deductions.filter(status=Deduction.Status.PROCESSING))
    last_reach = max((deduction.reachable_until or timezone.now() for deduction in stuck), default=timezone.now())
    settle_many(stuck, now=max(last_reach, timezone.now()) + wechatpay.DEDUCT_WINDOW + timedelta(seconds=1))
    assert len(stuck) <= 2
    print(f"killed worker left {len(stuck)} claimed deduction(s) PROCESSING; {resumed} CREATED row(s) enqueued again")

    numbers = dict(run.deductions.values_list("combine_out_trade_no", "status"))
    posts = sandbox.deductions.posts
    assert all(posts[number] <= 1 for number in numbers), "a charge was sent twice"
    succeeded = [number for number, status in numbers.items() if status == Deduction.Status.SUCCEEDED]
    assert all(posts[number] == 1 and sandbox.deductions.get(number) for number in succeeded)
    assert len(succeeded) >= DEDUCTIONS - 2
    assert set(numbers.values()) <= {Deduction.Status.SUCCEEDED, Deduction.Status.FAILED}
    assert CallWindow.objects.aggregate(busiest=Max("calls"))["busiest"] <= RATE
    assert survivor.poll() is None  # still serving

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
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from django_papay.dispatch import send_run
from django_papay.models import Deduction

from .worker_runs import (
    DEDUCTIONS,
    RATE,
    REPO,
    assert_charged_at_most_once,
    sent,
    settle_what_was_left,
    start_run,
    stop_all,
    wait_until,
)

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
    stop_all(started)  # SIGTERM: db_worker finishes its task, then exits


def test_a_killed_worker_never_causes_a_second_charge(workers, sandbox):
    run = start_run(sandbox)
    doomed, survivor = workers(), workers()
    wait_until(lambda: sent(run) >= DEDUCTIONS // 2, 120, "half the run")
    doomed.send_signal(signal.SIGKILL)  # mid-task, most likely: no chance to finish or clean up
    doomed.wait(timeout=10)
    # A send task the dead worker held is lost with it: resuming the run enqueues the rows still CREATED
    # again, and whichever task claims a row sends it; a row already claimed is never sent again.
    resumed = run.deductions.filter(status=Deduction.Status.CREATED).count()
    send_run(run)
    wait_until(lambda: sent(run) == DEDUCTIONS, 90, "every deduction sent")
    # A claim the dead worker never finished stays PROCESSING: settled once WeChat Pay's minute has passed since
    # the call could last reach it (its reachable_until: the claim plus the deduct timeouts).
    stuck = settle_what_was_left(run)
    print(f"killed worker left {stuck} claimed deduction(s) PROCESSING; {resumed} CREATED row(s) enqueued again")
    assert stuck <= 2
    assert_charged_at_most_once(run, sandbox, lost_at_most=2)
    assert survivor.poll() is None  # still serving

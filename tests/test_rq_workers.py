"""The billing run of tests/test_workers.py on RQ: 1,000 deductions, two real ``rqworker`` processes (the guide's
command line), one SIGKILLed half-way; and the same run with Redis itself killed and restarted half-way.

Each test starts a Redis server of its own (``redis-server`` on a free loopback port, in a temporary folder), so
killing it touches nobody else's Redis. Every deduction must be charged at most once (the sandbox counts the POSTs
per number), none left outside PROCESSING and the final states, and ``settle_many`` finishes what was left.
PostgreSQL only (the workers are other processes on the test's database), with django-tasks-rq (the dev extra)
and ``redis-server`` on PATH; CI installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from django_papay.dispatch import send_run

from .test_rq_worker import RQWORKER
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
        importlib.util.find_spec("django_tasks_rq") is None,
        reason="needs django-tasks-rq, the RQ backend (the dev extra)",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """``redis-server`` on a port of its own, without persistence: a restart loses what was queued."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL)
        wait_until(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path, settings) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI installs it (.ci/run)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    settings.RQ_QUEUES = {"default": {"URL": server.url}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)


@pytest.fixture
def rqworkers(papay, redis_server, tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """``start()`` starts an ``rqworker`` on this test's database, sandbox and Redis; all stopped afterwards."""
    papay.update(TASKS=True, MAX_CALLS_PER_SECOND=RATE)
    config = tmp_path / "papay.json"
    config.write_text(json.dumps(papay))
    env = {
        **os.environ,
        "PAPAY_WORKER_DATABASE": connection.settings_dict["NAME"],
        "PAPAY_WORKER_SETTINGS": str(config),
        "PAPAY_WORKER_REDIS_URL": redis_server.url,
        "PYTHONPATH": str(REPO),
    }
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        command = [sys.executable, "-m", "django", *RQWORKER, "--settings", "tests.worker_settings"]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    stop_all(started)  # SIGTERM: rqworker's warm shutdown finishes the job in hand first


def test_a_killed_rq_worker_never_causes_a_second_charge(rqworkers, sandbox):
    run = start_run(sandbox)
    doomed, survivor = rqworkers(), rqworkers()
    wait_until(lambda: sent(run) >= DEDUCTIONS // 2, 90, "half the run")
    doomed.send_signal(signal.SIGKILL)  # mid-job, most likely: no chance to finish or clean up
    doomed.wait(timeout=10)
    # The job the dead worker held is lost with it (RQ leaves it in the started registry). Resuming the run
    # enqueues the rows still CREATED again; a row already claimed is never sent again.
    send_run(run)
    wait_until(lambda: sent(run) == DEDUCTIONS, 120, "every deduction sent")
    stuck = settle_what_was_left(run)
    assert stuck <= 2
    assert_charged_at_most_once(run, sandbox, lost_at_most=2)
    assert survivor.poll() is None  # still serving


def test_redis_restarted_mid_run_never_causes_a_second_charge(rqworkers, redis_server, sandbox):
    run = start_run(sandbox)
    first = [rqworkers(), rqworkers()]
    wait_until(lambda: sent(run) >= DEDUCTIONS // 3, 90, "a third of the run")
    redis_server.kill()  # every queued job is gone with it (no persistence); the workers lose their connection
    before = sent(run)
    time.sleep(1)
    redis_server.start()
    # Whatever became of the workers (rqworker exits when Redis goes away), the queue is empty: what they had not
    # claimed is still CREATED in the database, and resuming the run enqueues exactly those rows again.
    stop_all(first, timeout=30)
    rqworkers(), rqworkers()
    send_run(run)
    wait_until(lambda: sent(run) == DEDUCTIONS, 120, "every deduction sent after the restart")
    stuck = settle_what_was_left(run)
    print(f"{before} sent before Redis died; {stuck} claim(s) left PROCESSING, settled")
    assert stuck <= 2
    assert_charged_at_most_once(run, sandbox, lost_at_most=2)

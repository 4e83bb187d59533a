"""The guide's RQ worker command line, run for real: ``manage.py rqworker`` (django-rq) on Redis, with the
job class django-tasks-rq needs (without it rq 3 fails every task: "'Task' object is not callable") and the
scheduler that runs the tasks enqueued with ``run_after`` (a retry after a 5xx).

PostgreSQL only (the worker is another process on the test's database), with django-tasks-rq installed (the
dev extra) and Redis at ``PAPAY_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0, a database the test empties).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from django_papay import tasks
from django_papay.models import Contract
from django_papay.services.contracts import contract_path


def needs_a_worker(test):
    """PostgreSQL (the worker is another process on the test's database) and django-tasks-rq."""
    for mark in (
        pytest.mark.django_db(transaction=True),
        pytest.mark.skipif(
            connection.vendor != "postgresql",
            reason="needs PostgreSQL and a real worker process: run with PAPAY_TEST_DATABASE=postgres",
        ),
        pytest.mark.skipif(
            importlib.util.find_spec("django_tasks_rq") is None,
            reason="needs django-tasks-rq, the RQ backend (the dev extra)",
        ),
    ):
        test = mark(test)
    return test


REDIS_URL = os.environ.get("PAPAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parent.parent
# As docs/running-at-scale.md documents it; test_the_guide_documents_this_command_line keeps them one.
RQWORKER = ["rqworker", "--job-class", "django_tasks_rq.Job", "--with-scheduler", "--worker-class", "rq.SimpleWorker"]


@pytest.fixture
def redis_queue(settings):
    """TASKS on RQ at REDIS_URL, its Redis database emptied before and after; skipped when Redis is not there."""
    import redis

    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL} ({type(exc).__name__}); set PAPAY_TEST_REDIS_URL")
    server.flushdb()
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    yield
    server.flushdb()


@pytest.fixture
def rqworker(papay, redis_queue, tmp_path):
    """The documented ``rqworker`` command on this test's database and sandbox; stopped afterwards."""
    papay["TASKS"] = True
    config = tmp_path / "papay.json"
    config.write_text(json.dumps(papay))
    env = {
        **os.environ,
        "PAPAY_WORKER_DATABASE": connection.settings_dict["NAME"],
        "PAPAY_WORKER_SETTINGS": str(config),
        "PAPAY_WORKER_REDIS_URL": REDIS_URL,
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "django", *RQWORKER, "--settings", "tests.worker_settings"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    yield process
    process.send_signal(signal.SIGTERM)  # warm shutdown: the job in hand is finished first
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@needs_a_worker
def test_the_rq_worker_runs_a_task_and_its_retry_after_a_server_error(rqworker, sandbox, presigned_contract):
    sandbox.sign_contract(presigned_contract.out_contract_code, drop=True)  # the notification never came
    sandbox.fail_next("system_error")  # the first query: 500, retried with run_after (the scheduler's)
    tasks.query_contract.enqueue(presigned_contract.pk)
    deadline = time.monotonic() + 60
    while Contract.objects.get(pk=presigned_contract.pk).status != Contract.Status.SIGNED:
        assert rqworker.poll() is None, rqworker.stderr.read().decode(errors="replace")[-2000:]
        assert time.monotonic() < deadline, "the worker did not run the task and its retry"
        time.sleep(0.2)
    queries = [request for request in sandbox.requests if request.path == contract_path(presigned_contract)]
    assert len(queries) == 2  # the one that failed, and the retry


def test_the_guide_documents_this_command_line():
    guide = (REPO / "docs" / "running-at-scale.md").read_text(encoding="utf-8")
    assert "python manage.py " + " ".join(RQWORKER) in guide

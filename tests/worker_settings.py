"""Settings for the task workers that tests/test_workers.py and tests/test_rq_worker.py start: the suite's, on
that test's database, with the PAPAY dict the test wrote (pointing at its loopback sandbox) and the test's task
backend — the database worker's, or with ``PAPAY_WORKER_REDIS_URL`` RQ on that Redis."""

import json
import os
from pathlib import Path

from .settings import *  # noqa: F403
from .settings import DATABASES, INSTALLED_APPS

DATABASES["default"]["NAME"] = os.environ["PAPAY_WORKER_DATABASE"]
PAPAY = json.loads(Path(os.environ["PAPAY_WORKER_SETTINGS"]).read_text())
if os.environ.get("PAPAY_WORKER_REDIS_URL"):
    INSTALLED_APPS = [*INSTALLED_APPS, "django_rq", "django_tasks_rq"]  # django_rq: the rqworker command
    RQ_QUEUES = {"default": {"URL": os.environ["PAPAY_WORKER_REDIS_URL"]}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

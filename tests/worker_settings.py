"""Settings for the task workers that tests/test_workers.py starts: the suite's, on that test's database,
with the database task backend and the PAPAY dict the test wrote (pointing at its loopback sandbox)."""

import json
import os
from pathlib import Path

from .settings import *  # noqa: F403
from .settings import DATABASES

DATABASES["default"]["NAME"] = os.environ["PAPAY_WORKER_DATABASE"]
PAPAY = json.loads(Path(os.environ["PAPAY_WORKER_SETTINGS"]).read_text())
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

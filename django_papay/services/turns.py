"""Taking turns on SQLite, which answers a competing writer with "locked" instead of waiting.

A shared-cache in-memory database (Django's test database) does so at once, a file after its timeout.
PostgreSQL and the others wait on their own row locks, so there this is a plain call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection

T = TypeVar("T")

PAUSE = 0.05  # seconds between tries


def in_turn(work: Callable[[], T], *, seconds: float = 10.0) -> T:
    """``work()``, run again while SQLite says "locked".

    ``work`` may run more than once: what it wrote before the error must be rolled back by then (its own
    ``transaction.atomic()``), and it must not have sent anything that cannot be sent twice.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return work()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(PAUSE)

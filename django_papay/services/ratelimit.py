"""One call rate for every worker on every host: ``PAPAY["MAX_CALLS_PER_SECOND"]``, counted in the database.

WeChat Pay limits a merchant's calls per second (429 RATELIMIT_EXCEEDED / FREQUENCY_LIMITED) whichever process
makes them, so the count cannot live in a process's memory: each second is a ``CallWindow`` row, and a call
takes a place in it with one conditional UPDATE (``calls < limit``) before it is sent. Seconds are Unix time on
each host's clock, so the hosts' clocks must agree (NTP) to well under a second.

A task that finds its second full is not held in its worker: ``take_turn`` says how long until the next
second, and the task is enqueued again for then (``tasks.py``). Only a caller with no queue to go back to
(``wait_turn``: a loop in a command or a request) sleeps until its turn.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import F

from .. import conf
from ..models import CallWindow
from .turns import in_turn

KEEP_SECONDS = 60  # windows older than this are deleted when a new one is opened


def take_turn(now: float | None = None) -> float:
    """Take a place for one call in the current second: 0.0 when taken (send now), else the seconds to wait.

    Always 0.0 without ``MAX_CALLS_PER_SECOND``. A place is taken only when 0.0 is returned.
    """
    limit = conf.max_calls_per_second()
    if limit is None:
        return 0.0
    now = time.time() if now is None else now
    second = int(now)

    def take() -> bool:
        with transaction.atomic():
            _window, opened = CallWindow.objects.get_or_create(second=second)
            if opened:
                CallWindow.objects.filter(second__lt=second - KEEP_SECONDS).delete()
            return bool(CallWindow.objects.filter(second=second, calls__lt=limit).update(calls=F("calls") + 1))

    return 0.0 if in_turn(take) else second + 1 - now


def wait_turn() -> None:
    """Sleep until a place is taken: for callers that run in a loop, not in a task worker."""
    while wait := take_turn():
        time.sleep(wait)

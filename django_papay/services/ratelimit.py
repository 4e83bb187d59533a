"""One call rate for every worker on every host: ``PAPAY["MAX_CALLS_PER_SECOND"]``, counted in the database.

WeChat Pay limits a merchant's calls per second (429 RATELIMIT_EXCEEDED / FREQUENCY_LIMITED) whichever process
makes them, so the count cannot live in a process's memory: each second is a ``CallWindow`` row, and a call
takes a place in it with one conditional UPDATE (``calls < limit``) before it is sent. Seconds are Unix time on
each host's clock, so the hosts' clocks must agree (NTP) to well under a second.

The rule: **one place per WeChat Pay call, taken just before that call is sent**, in the thread that prepared
it. ``operations`` takes them (``take_places``), so every call counts wherever it is made — a settle's query,
reverse and second query, the contract query a charge makes first, each call of a bulk run — and the
certificate download takes its own (``certificates``). A bulk run takes each call's place in the calling
thread (the sending threads stay out of the database) and only when a sending thread is free for it, so a call
is sent in the second it was counted in, not queued into a later one.

A task that finds its second full is not held in its worker: it takes the place for its first call itself,
without waiting (``first_call_place``), and is enqueued again for the next second when none is left
(``tasks.py``). The place it took is the one its first call uses — never a second one — and only within the
second it was taken in: a call sent in a later second takes a fresh place. The task's later calls (settle's
reverse, say) wait for theirs, as does a caller with no queue to go back to (``wait_for_place``: a command, a
request, a bulk action).

Take places outside a transaction (not under ATOMIC_REQUESTS, as ``deduct`` must be anyway): a place taken
inside one is not counted by other processes until it commits, and on PostgreSQL the second's row stays locked
until then, holding every other caller of that second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction
from django.db.models import F

from .. import conf
from ..models import CallWindow
from .turns import in_turn

KEEP_SECONDS = 60  # windows older than this are deleted when a new one is opened

# The second of a place taken ahead for the next call made in this context (a task's first call), if any.
_taken_ahead: ContextVar[int | None] = ContextVar("papay_place_taken_ahead", default=None)


def take_place(now: float | None = None) -> float:
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


def wait_for_place() -> None:
    """Sleep until a place is taken: for callers that run in a loop, not in a task worker."""
    while wait := take_place():
        time.sleep(wait)


@contextmanager
def first_call_place() -> Iterator[float]:
    """Take the place of the block's first WeChat Pay call now, without waiting: yields 0.0 when taken, else
    the seconds until the next second (nothing taken; a task comes back then).

    When taken, the block's first call uses it instead of taking another (``take_places``); a place left
    unused when the block ends is simply lost, never carried to a later call.
    """
    now = time.time()
    wait = take_place(now)
    token = _taken_ahead.set(None if wait or conf.max_calls_per_second() is None else int(now))
    try:
        yield wait
    finally:
        _taken_ahead.reset(token)


@contextmanager
def place_ahead() -> Iterator[None]:
    """Wait for the place of the block's first WeChat Pay call now, before the block starts: a caller that must
    not wait between two of its own steps (a deduction's claim and its call, which ``reachable_until`` counts
    from) waits here instead. A place already taken ahead in this second is the one used; none is taken twice.
    """
    if conf.max_calls_per_second() is None or _taken_ahead.get() == int(time.time()):
        yield
        return
    while wait := take_place(now := time.time()):
        time.sleep(wait)
    token = _taken_ahead.set(int(now))
    try:
        yield
    finally:
        _taken_ahead.reset(token)


def take_places(count: int = 1) -> None:
    """A place for each of ``count`` calls about to be sent, waiting for them as needed.

    A place taken ahead by ``first_call_place`` in this second counts for the first of them.
    """
    if count < 1 or conf.max_calls_per_second() is None:
        return
    ahead = _taken_ahead.get()
    if ahead is not None:
        _taken_ahead.set(None)
        if ahead == int(time.time()):  # a place of an earlier second would make this one's count too high
            count -= 1
    for _ in range(count):
        wait_for_place()

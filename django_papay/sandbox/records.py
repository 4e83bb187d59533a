"""What the sandbox remembers having received and sent: the request log and the delivery log.

Both are thread-safe and hand out snapshots; ``reset()`` empties them. The delivery log also holds the
"cancelled" signal that stops deliveries still waiting for their delay (on reset and stop).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the sandbox. ``path`` includes ``?query``; header lookups ignore case.

    ``received_at`` is when it was read (Unix time, ``time.time()``), so tests can count calls per second; it
    takes no part in comparing two requests.
    """

    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    received_at: float = field(default_factory=time.time, compare=False)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt: the receiver's status and body, or ``status`` None and the connection error."""

    notification_id: str
    event_type: str
    url: str
    status: int | None
    body: bytes
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for 2xx, the only answers WeChat Pay takes as "received" (anything else is retried)."""
        return self.status is not None and 200 <= self.status < 300


class RequestLog(list[RecordedRequest]):
    """Every merchant-API request that reached the sandbox (refused ones too), oldest first.

    A plain list, so tests can read, compare and ``clear()`` it; appending is atomic under CPython.
    """


class DeliveryLog:
    """Every notification delivery attempt, oldest first, and the signal that cancels pending ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> threading.Event:
        """The event a delivery started now watches; set by ``cancel_pending``."""
        with self._lock:
            return self._cancelled

    def append(self, delivery: Delivery, cancelled: threading.Event) -> bool:
        """Record ``delivery`` unless ``cancelled`` was set meanwhile (a reset: not ours to record)."""
        with self._lock:
            if cancelled.is_set():
                return False
            self._deliveries.append(delivery)
            return True

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def cancel_pending(self) -> None:
        """Drop deliveries still waiting for their delay or their next attempt (reset, stop)."""
        with self._lock:
            self._cancelled.set()
            self._cancelled = threading.Event()

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

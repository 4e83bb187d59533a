"""FaultQueue: the faults waiting for the next merchant-API requests, first in first out. Thread-safe.

It lives on the state (``SandboxState.faults``), so the loopback controls can queue faults as tests do; what
each fault does is ``faults.py``'s. It holds any objects and imports nothing of the sandbox.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FaultQueue:
    """Pending faults; each merchant-API request takes at most one (``pop``: None when there is none)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[Any] = deque()

    def push(self, fault: Any, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._pending.extend([fault] * times)

    def pop(self) -> Any | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def names(self) -> list[str]:
        """The pending faults' names, next first."""
        with self._lock:
            return [getattr(fault, "name", type(fault).__name__) for fault in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

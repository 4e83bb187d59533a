"""Faults the sandbox can inject, so tests reach every failure a client must survive.

A fault is queued with ``Sandbox.fail_next`` (or an error answer with ``Sandbox.answer_next``) and is
consumed by the next request that reaches the handler, before any check, whatever the endpoint.

| fault             | what the client sees                                        | request processed? |
|-------------------|-------------------------------------------------------------|--------------------|
| ratelimit         | 429 RATELIMIT_EXCEEDED, signed                              | no                 |
| system_error      | 500 SYSTEM_ERROR, signed                                    | no                 |
| unavailable       | 503 SERVICE_UNAVAILABLE, signed                             | no                 |
| timeout           | the normal answer, after ``fault_delay`` seconds            | yes, before sleep  |
| reset             | the connection reset (SO_LINGER 0), no answer               | no                 |
| bad_signature     | the normal answer, signature of a different body            | yes                |
| unknown_serial    | the normal answer signed by another key, unknown serial     | yes                |
| not_json          | 200 ``<html>upstream error</html>``, text/html, signed      | no                 |
| truncated         | the normal answer, Content-Length larger than the body sent | yes                |
| stale_timestamp   | the normal answer, signed, Wechatpay-Timestamp 600 s old    | yes                |
| other_contract    | the normal answer, signed, for another contract or charge   | yes                |
| system_error_after| 500 SYSTEM_ERROR, signed                                    | yes                |
"""

from __future__ import annotations

import json
import threading
from collections import deque

from .answers import Answer

UNKNOWN_SERIAL = "PUB_KEY_ID_0000000000000000000000000000UNKNOWN"
STALE_SECONDS = 600
TRUNCATED_MISSING_BYTES = 64

# Faults that replace the answer with a WeChat Pay error, without processing the request.
ERROR_FAULTS: dict[str, tuple[int, str, str]] = {
    "ratelimit": (429, "RATELIMIT_EXCEEDED", "请求频率超限，请降低频率后重试"),
    "system_error": (500, "SYSTEM_ERROR", "系统错误，请使用相同参数重试"),
    "unavailable": (503, "SERVICE_UNAVAILABLE", "服务暂不可用，请稍后重试"),
}
# Faults that change how the normal answer is delivered or signed.
DELIVERY_FAULTS = frozenset(
    {"timeout", "reset", "bad_signature", "unknown_serial", "not_json", "truncated", "stale_timestamp",
     "other_contract", "system_error_after"}
)
FAULTS = frozenset(ERROR_FAULTS) | DELIVERY_FAULTS


def not_json_answer() -> Answer:
    return Answer(200, b"<html>upstream error</html>", "text/html; charset=utf-8")


def error_fault_answer(name: str) -> Answer:
    return Answer.error(*ERROR_FAULTS[name])


def other_contract_answer(answer: Answer) -> Answer:
    """A correctly signed answer that belongs to someone else's contract (a mix-up a client must catch)."""
    if answer.status != 200:
        return answer
    payload = json.loads(answer.body)
    for number in ("out_contract_code", "combine_out_trade_no"):
        if number in payload or number == "out_contract_code":
            payload[number] = "OTHER" + str(payload.get(number, ""))[:27]
    return Answer.json(200, payload)


class FaultQueue:
    """Pending faults, first in first out; each request takes at most one. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[str | Answer] = deque()

    def push(self, fault: str | Answer, times: int = 1) -> None:
        """Queue a fault name (checked against ``FAULTS``) or a ready error answer ``times`` times."""
        if isinstance(fault, str) and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(sorted(FAULTS))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._pending.extend([fault] * times)

    def pop(self) -> str | Answer | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

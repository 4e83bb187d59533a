"""Faults the sandbox can inject, so tests reach every failure a client must survive.

A fault is queued with ``Sandbox.fail_next`` (or an error answer with ``Sandbox.answer_next``) and is taken
by the next merchant-API request, before any check, whatever the endpoint. Each fault is an object that
overrides the one step of answering its failure lives in — ``reply`` (what is answered), ``sign`` (which
key, serial and timestamp sign it), ``transmit`` (what reaches the wire) — or ``serve`` as a whole; the
HTTP server just calls ``fault.serve(...)``, with ``NO_FAULT`` when none is queued.

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
| late_arrival      | the normal answer, the request received ``fault_delay`` late| yes, after sleep   |

``alter_next(change)`` queues an ``Altered`` answer: the normal one with its JSON changed by ``change``, signed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

from .fault_queue import FaultQueue as FaultQueue  # re-exported: where it used to live
from .replies import Reply, new_request_id, signed_headers
from .state import SandboxState

UNKNOWN_SERIAL = wechatpay.PUBLIC_KEY_ID_PREFIX + "0000000000000000000000000000UNKNOWN"
STALE_SECONDS = 600
TRUNCATED_MISSING_BYTES = 64


class Wire(Protocol):
    """The connection a reply goes out on (the HTTP server's side of it)."""

    def send(
        self, reply: Reply, headers: dict[str, str], *, body: bytes | None = None, content_length: int | None = None
    ) -> None: ...

    def reset(self) -> None: ...


class Fault:
    """No fault: the endpoint's reply, signed as WeChat Pay signs, sent whole. Faults override one step."""

    name = "none"

    def serve(self, state: SandboxState, run: Callable[[], Reply], wire: Wire) -> None:
        reply = self.reply(state, run)
        self.transmit(wire, reply, self.sign(state, reply))

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        """What is answered; ``run()`` processes the request and gives the endpoint's reply."""
        return run()

    def sign(self, state: SandboxState, reply: Reply) -> dict[str, str]:
        if not reply.signed:  # a file download: WeChat Pay signs none [C]
            return {wechatpay.REQUEST_ID_HEADER: new_request_id()}
        return signed_headers(reply.body, *state.signer())

    def transmit(self, wire: Wire, reply: Reply, headers: dict[str, str]) -> None:
        wire.send(reply, headers)

    def __repr__(self) -> str:
        return f"<fault {self.name}>"


NO_FAULT = Fault()


class ErrorAnswer(Fault):
    """A signed WeChat Pay error instead of processing the request (``answer_next`` queues any one)."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        self.name = code.lower()
        self._reply = Reply.error(status, code, message, detail)

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        return self._reply


class NotJson(Fault):
    name = "not_json"

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        return Reply(200, b"<html>upstream error</html>", "text/html; charset=utf-8")


class Timeout(Fault):
    name = "timeout"

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        reply = run()
        time.sleep(state.fault_delay)
        return reply


class OtherContract(Fault):
    """A correctly signed answer that belongs to someone else's contract or charge (a mix-up a client must catch)."""

    name = "other_contract"

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        reply = run()
        if reply.status != 200:
            return reply
        payload = json.loads(reply.body)
        number = "combine_out_trade_no" if "combine_out_trade_no" in payload else "out_contract_code"
        payload[number] = "OTHER" + str(payload.get(number, ""))[:27]
        return Reply.json(200, payload)


class LateArrival(Fault):
    """The request reaches WeChat Pay late (a slow network, a busy gateway): processed after ``fault_delay``
    seconds, then answered. Until then a query of the charge finds no such order."""

    name = "late_arrival"

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        time.sleep(state.fault_delay)
        return run()


class Altered(Fault):
    """The normal answer with its JSON changed in place by ``change``, correctly signed: values a client must
    store or refuse (a payer_amount of 2**63, a NUL in a transaction id)."""

    name = "altered"

    def __init__(self, change: Callable[[Any], None]) -> None:
        self._change = change

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        reply = run()
        if reply.status != 200:
            return reply
        payload = json.loads(reply.body)
        self._change(payload)
        return Reply.json(200, payload)


class SystemErrorAfter(Fault):
    """The request is processed (a charge is taken), then answered 500: the outcome a client cannot know."""

    name = "system_error_after"

    def reply(self, state: SandboxState, run: Callable[[], Reply]) -> Reply:
        run()
        return FAULTS["system_error"].reply(state, run)


class BadSignature(Fault):
    name = "bad_signature"

    def sign(self, state: SandboxState, reply: Reply) -> dict[str, str]:
        return signed_headers(reply.body + b" ", *state.signer())  # a valid signature, of a different body


class UnknownSerial(Fault):
    name = "unknown_serial"
    _lock = threading.Lock()
    _stranger: rsa.RSAPrivateKey | None = None

    def sign(self, state: SandboxState, reply: Reply) -> dict[str, str]:
        return signed_headers(reply.body, self._stranger_key(), UNKNOWN_SERIAL)

    @classmethod
    def _stranger_key(cls) -> rsa.RSAPrivateKey:
        """A key WeChat Pay never published (made once, on first use: RSA keys are slow to make)."""
        with cls._lock:
            if cls._stranger is None:
                cls._stranger = crypto.generate_private_key()
            return cls._stranger


class StaleTimestamp(Fault):
    name = "stale_timestamp"

    def sign(self, state: SandboxState, reply: Reply) -> dict[str, str]:
        key, serial = state.signer()
        return signed_headers(reply.body, key, serial, timestamp=int(time.time()) - STALE_SECONDS)


class Truncated(Fault):
    name = "truncated"

    def transmit(self, wire: Wire, reply: Reply, headers: dict[str, str]) -> None:
        length = len(reply.body) + TRUNCATED_MISSING_BYTES
        wire.send(reply, headers, body=reply.body[: len(reply.body) // 2], content_length=length)


class Reset(Fault):
    name = "reset"

    def serve(self, state: SandboxState, run: Callable[[], Reply], wire: Wire) -> None:
        wire.reset()


FAULTS: dict[str, Fault] = {
    "ratelimit": ErrorAnswer(429, wechatpay.RATELIMIT_EXCEEDED, "请求频率超限，请降低频率后重试"),
    "system_error": ErrorAnswer(500, wechatpay.SYSTEM_ERROR, "系统错误，请使用相同参数重试"),
    "unavailable": ErrorAnswer(503, wechatpay.SERVICE_UNAVAILABLE, "服务暂不可用，请稍后重试"),
    **{
        fault.name: fault
        for fault in (
            Timeout(),
            Reset(),
            BadSignature(),
            UnknownSerial(),
            NotJson(),
            Truncated(),
            StaleTimestamp(),
            OtherContract(),
            SystemErrorAfter(),
            LateArrival(),
        )
    },
}


def named(name: str) -> Fault:
    """The fault called ``name``; ValueError naming the choices when there is none."""
    try:
        return FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r}; choose one of {', '.join(sorted(FAULTS))}") from None

"""The HTTP side of the sandbox: the loopback server, the request handler and the request record.

The handler records every request, takes the next queued fault, asks the sandbox for the answer
(``Sandbox._answer``: route, check, run the endpoint), then signs and sends it, bent by the fault if
there is one. Wire-level faults (reset, truncated) live here because they need the socket. Requests
to the sandbox's own controls (``control``) are answered straight away: not recorded, no fault, no delay.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from requests.structures import CaseInsensitiveDict

from . import endpoints, faults
from .answers import Answer, signed_headers

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger("django_papay.sandbox")

IDLE_CONNECTION_TIMEOUT = 60  # seconds a keep-alive connection may stay silent


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the sandbox. ``path`` includes ``?query``; header lookups ignore case."""

    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    # Don't wait for handler threads on close: a client's idle keep-alive connection would block stop().
    block_on_close = False

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, tls: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self.tls = tls
        super().__init__(address, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # Wrapped here, shaken hands in the handler's own thread (Handler.setup): a slow or
            # failing client must not hold up the accept loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are routine in fault tests; never print tracebacks to stderr.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so every answer carries a correct Content-Length
    timeout = IDLE_CONNECTION_TIMEOUT
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for the client's
    # delayed ACK of the headers, 40 ms per answer on Linux.
    disable_nagle_algorithm = True
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()  # sets the idle timeout, which bounds the handshake too
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        self.server.sandbox._connection_opened(self.connection)

    def finish(self) -> None:
        self.server.sandbox._connection_closed(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, unsupported method) get a signed JSON error too.
        self.close_connection = True
        self._send(Answer.error(code, "INVALID_REQUEST", message or self.responses.get(code, ("",))[0]))

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body()
        if body is None:
            return
        request = RecordedRequest(self.command, self.path, CaseInsensitiveDict(self.headers.items()), body)
        if endpoints.is_control(request.path):
            self._send(sandbox._answer(request), delay=False)
            return
        sandbox._record_request(request)
        fault = sandbox._faults.pop()
        if fault == "reset":
            self._reset()
            return
        if isinstance(fault, Answer):
            answer = fault
        elif fault in faults.ERROR_FAULTS:
            answer = faults.error_fault_answer(fault)
        elif fault == "not_json":
            answer = faults.not_json_answer()
        else:
            answer = sandbox._answer(request)
        if fault == "other_contract":
            answer = faults.other_contract_answer(answer)
        if fault == "system_error_after":  # processed, then answered as if it failed
            answer = faults.error_fault_answer("system_error")
        if fault == "timeout":
            time.sleep(sandbox.fault_delay)
        self._send(answer, fault if isinstance(fault, str) else None)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "send the body with a Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "Content-Length is not a number")
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, answer: Answer, fault: str | None = None, *, delay: bool = True) -> None:
        sandbox = self.server.sandbox
        if delay and sandbox.response_delay > 0:
            time.sleep(sandbox.response_delay)
        key, key_id = sandbox._signer()
        timestamp, signed_body = None, None
        if fault == "unknown_serial":
            key, key_id = sandbox._stranger_key(), faults.UNKNOWN_SERIAL
        elif fault == "stale_timestamp":
            timestamp = int(time.time()) - faults.STALE_SECONDS
        elif fault == "bad_signature":
            signed_body = answer.body + b" "  # a valid signature, of a different body
        headers = signed_headers(
            answer.body, private_key=key, key_id=key_id, timestamp=timestamp, signed_body=signed_body
        )
        body, length = answer.body, len(answer.body)
        if fault == "truncated":
            body, length = answer.body[: len(answer.body) // 2], length + faults.TRUNCATED_MISSING_BYTES
            self.close_connection = True
        self.send_response(answer.status)
        for name, value in {**headers, **answer.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset: linger 0, then close every reference to the socket."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.sandbox._connection_closed(self.connection)
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

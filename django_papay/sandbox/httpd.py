"""The HTTP side of the sandbox, and only that: the loopback server, reading requests, writing replies.

For a merchant-API request the handler records it, takes the next queued fault and lets the fault serve
it (``fault.serve``: run the route, sign, transmit — each step a fault may bend); this module is the
``Wire`` a fault writes to or resets. Requests to the sandbox's own controls (``/sandbox/…``) are answered
straight away: not recorded, no fault, no delay.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict

from django_papay import wechatpay

from . import routes
from .fault_queue import FaultQueue
from .faults import NO_FAULT
from .records import RecordedRequest
from .replies import Reply
from .state import SandboxState

logger = logging.getLogger("django_papay.sandbox")

IDLE_CONNECTION_TIMEOUT = 60  # seconds a keep-alive connection may stay silent


class LoopbackServer(ThreadingHTTPServer):
    """Serves one ``SandboxState`` with the faults of one ``FaultQueue``; https with a ``tls`` context."""

    daemon_threads = True
    # Don't wait for handler threads on close: a client's idle keep-alive connection would block stop().
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], state: SandboxState, faults: FaultQueue, tls: ssl.SSLContext | None = None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self.faults = faults
        self.tls = tls
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(address, RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # Wrapped here, shaken hands in the handler's own thread (RequestHandler.setup): a slow or
            # failing client must not hold up the accept loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are routine in fault tests; never print tracebacks to stderr.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections (after ``shutdown``)."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class RequestHandler(BaseHTTPRequestHandler):
    """One connection; also the ``faults.Wire`` its replies go out on."""

    protocol_version = "HTTP/1.1"  # keep-alive, so every answer carries a correct Content-Length
    timeout = IDLE_CONNECTION_TIMEOUT
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for the client's
    # delayed ACK of the headers, 40 ms per answer on Linux.
    disable_nagle_algorithm = True
    server: LoopbackServer
    _delay = 0.0

    def setup(self) -> None:
        super().setup()  # sets the idle timeout, which bounds the handshake too
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, unsupported method) get a signed JSON error too.
        self.close_connection = True
        self._delay = 0.0
        reply = Reply.error(code, wechatpay.INVALID_REQUEST, message or self.responses.get(code, ("",))[0])
        NO_FAULT.serve(self.server.state, lambda: reply, self)

    def _serve(self) -> None:
        state = self.server.state
        body = self._read_body()
        if body is None:
            return
        request = RecordedRequest(self.command, self.path, CaseInsensitiveDict(self.headers.items()), body)
        if routes.is_control(request.path):
            self._delay = 0.0
            NO_FAULT.serve(state, lambda: routes.control_reply(state, request), self)
            return
        state.requests.append(request)
        self._delay = state.response_delay
        (self.server.faults.pop() or NO_FAULT).serve(state, lambda: routes.merchant_reply(state, request), self)

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

    # --- faults.Wire ----------------------------------------------------------------------------

    def send(
        self, reply: Reply, headers: dict[str, str], *, body: bytes | None = None, content_length: int | None = None
    ) -> None:
        """Write ``reply`` with ``headers`` (after the response delay); ``body``/``content_length`` let a fault
        send something else than the reply announces, on a connection then closed."""
        if self._delay > 0:
            time.sleep(self._delay)
        if body is not None or content_length is not None:
            self.close_connection = True
        body = reply.body if body is None else body
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def reset(self) -> None:
        """Drop the connection with a TCP reset: linger 0, then close every reference to the socket."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.closed(self.connection)
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

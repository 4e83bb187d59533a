"""Serve this Django site on a loopback port in a background thread, for the sandbox's notifications."""

from __future__ import annotations

import threading

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # the demo prints its own steps
        pass


class SiteServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedWSGIServer((host, port), QuietHandler, allow_reuse_address=True)
        self._server.set_app(WSGIHandler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="demo-site")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

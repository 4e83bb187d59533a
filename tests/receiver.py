"""The merchant's site as WeChat Pay's notifications reach it: a loopback HTTP server that records every POST
(test helper, for tests of the sandbox's deliveries; no Django)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from django_papay import crypto

from .helpers import Keys, signature_verifies


@dataclass(frozen=True)
class Received:
    """One POST as it arrived: its path, headers and raw body."""

    path: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    keys: Keys  # this run's: WeChat Pay's key verifies, the APIv3 key opens

    def verifies(self, public_key: Any = None) -> bool:
        return signature_verifies(self.headers, self.body, public_key or self.keys.wechatpay.public_key())

    def envelope(self) -> dict[str, Any]:
        return json.loads(self.body)

    def resource(self, apiv3_key: str | None = None) -> dict[str, Any]:
        sealed = self.envelope()["resource"]
        plaintext = crypto.decrypt(
            apiv3_key or self.keys.apiv3_key, sealed["nonce"], sealed["ciphertext"], sealed["associated_data"]
        )
        return json.loads(plaintext)


class Receiver:
    """Records every POST and answers ``status`` (204 unless a test changes it).

    With ``call_back`` set, it first GETs that URL, as a site asking WeChat Pay about the contract would.
    Serves from the moment it is made; ``close()`` stops it.
    """

    def __init__(self, keys: Keys) -> None:
        self.status = 204
        self.call_back: str | None = None
        self.call_back_statuses: list[int] = []
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = CaseInsensitiveDict(self.headers.items())
                receiver.received.append(Received(self.path, headers, body, keys))
                if receiver.call_back:
                    receiver.call_back_statuses.append(requests.get(receiver.call_back, timeout=2).status_code)
                self.send_response(receiver.status)
                if receiver.status in (301, 302):
                    self.send_header("Location", "/elsewhere/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def forget(self) -> None:
        """Back to a fresh site: nothing received, answering 204, no call back."""
        self.received.clear()
        self.status = 204
        self.call_back = None
        self.call_back_statuses.clear()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

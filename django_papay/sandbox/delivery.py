"""Delivering notifications over real HTTP, the way WeChat Pay's notifier does.

One POST per attempt, 5 s timeout, no redirects followed, the proxy settings of the environment
ignored (WeChat Pay does not use yours). Each redelivery of the same notification is re-signed with a
fresh timestamp and nonce over the same body. The ``Courier`` records every attempt and can run them
in a background thread; ``cancel_pending`` stops deliveries that have not happened yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from ..loopback import is_loopback_host
from .notifications import Notification

logger = logging.getLogger("django_papay.sandbox")

NOTIFY_TIMEOUT = 5.0  # seconds; WeChat Pay gives a receiver 5 s to answer


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


def is_loopback_url(url: str) -> bool:
    """The sandbox only ever talks to this machine: a notify_url not rewritten to loopback is not called."""
    return is_loopback_host(urlsplit(url).hostname or "")


def post(notification: Notification, *, timeout: float = NOTIFY_TIMEOUT) -> Delivery:
    """POST ``notification.body`` with its headers to its URL, once (loopback URLs only)."""
    if not is_loopback_url(notification.url):
        error = "not delivered: the sandbox only calls loopback URLs (map this one with notify_rewrite)"
        logger.warning("%s %s to %s %s", notification.event_type, notification.id, notification.url, error)
        return Delivery(notification.id, notification.event_type, notification.url, None, b"", error)
    try:
        with requests.Session() as session:
            session.trust_env = False  # no proxies or .netrc from the environment
            response = session.post(
                notification.url,
                data=notification.body,
                headers=notification.headers,
                timeout=timeout,
                allow_redirects=False,
            )
            status, body, error = response.status_code, response.content, ""
    except requests.RequestException as exc:
        status, body, error = None, b"", f"{type(exc).__name__}: {exc}"
    delivery = Delivery(notification.id, notification.event_type, notification.url, status, body, error)
    logger.info(
        "delivered %s %s to %s: %s", notification.event_type, notification.id, notification.url, status or error
    )
    return delivery


def _check_addressed(notifications: Sequence[Notification]) -> None:
    for notification in notifications:
        if not notification.url:
            raise ValueError(
                f"{notification.event_type} {notification.id} has no URL: its contract was never pre-signed "
                "in the sandbox; build it with url="
            )


class Courier:
    """Delivers notifications and remembers every attempt; thread-safe."""

    def __init__(self, timeout: float = NOTIFY_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._cancelled = threading.Event()

    @property
    def deliveries(self) -> list[Delivery]:
        """A snapshot of every attempt made so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def deliver(
        self, notification: Notification, *, repeat: int = 1, delay: float = 0.0, wait: bool = True
    ) -> list[Delivery]:
        """Send ``notification`` ``repeat`` times, after ``delay`` seconds.

        The first attempt sends it exactly as built; each further one is ``signed_again()``. With
        ``wait=False`` this returns ``[]`` at once and the attempts land in ``deliveries`` later.
        """
        _check_addressed([notification])
        if repeat < 1:
            raise ValueError("repeat must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        attempts = [notification] * repeat
        cancelled = self._cancelled
        if wait:
            return self._send(attempts, delay, cancelled)
        threading.Thread(
            target=self._send, args=(attempts, delay, cancelled), name="papay-sandbox-notify", daemon=True
        ).start()
        return []

    def deliver_in_order(self, notifications: Sequence[Notification]) -> list[Delivery]:
        """Send each notification once, in the order given, each after the previous one was answered."""
        _check_addressed(notifications)
        return self._send(notifications, 0.0, self._cancelled, resign_repeats=False)

    def cancel_pending(self) -> None:
        """Drop deliveries still waiting for their delay or their next attempt (reset, stop)."""
        with self._lock:
            self._cancelled.set()
            self._cancelled = threading.Event()

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def _send(
        self,
        notifications: Sequence[Notification],
        delay: float,
        cancelled: threading.Event,
        *,
        resign_repeats: bool = True,
    ) -> list[Delivery]:
        if delay > 0 and cancelled.wait(delay):
            return []
        made: list[Delivery] = []
        for attempt, notification in enumerate(notifications):
            if cancelled.is_set():
                break
            if attempt and resign_repeats:
                notification = notification.signed_again()
            delivery = post(notification, timeout=self.timeout)
            with self._lock:
                if cancelled.is_set():  # a reset happened while this one was in flight: not ours to record
                    break
                self._deliveries.append(delivery)
            made.append(delivery)
        return made

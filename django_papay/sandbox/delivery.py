"""Delivering notifications over real HTTP, the way WeChat Pay's notifier does.

One POST per attempt, 5 s timeout, no redirects followed, the proxy settings of the environment
ignored (WeChat Pay does not use yours). Each redelivery of the same notification is re-signed with a
fresh timestamp and nonce over the same body. The ``Courier`` writes every attempt to the state's
delivery log and can run them in a background thread; the log's ``cancel_pending`` stops the ones that
have not happened yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

import requests

from ..loopback import is_loopback_host
from .outgoing import OutgoingNotification
from .records import Delivery, DeliveryLog

logger = logging.getLogger("django_papay.sandbox")

NOTIFY_TIMEOUT = 5.0  # seconds; WeChat Pay gives a receiver 5 s to answer


def is_loopback_url(url: str) -> bool:
    """The sandbox only ever talks to this machine: a notify_url not rewritten to loopback is not called."""
    return is_loopback_host(urlsplit(url).hostname or "")


def post(notification: OutgoingNotification, *, timeout: float = NOTIFY_TIMEOUT) -> Delivery:
    """POST ``notification.body`` with its headers to its URL, once (loopback URLs only)."""
    if not is_loopback_url(notification.url):
        error = (
            "not delivered: the sandbox only calls loopback URLs (map this one to your site: "
            "--notify-rewrite PREFIX=http://127.0.0.1:PORT from a shell, sandbox.notify_rewrite in Python)"
        )
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
    logger.info(
        "delivered %s %s to %s: %s", notification.event_type, notification.id, notification.url, status or error
    )
    return Delivery(notification.id, notification.event_type, notification.url, status, body, error)


def _check_addressed(notifications: Sequence[OutgoingNotification]) -> None:
    for notification in notifications:
        if not notification.url:
            raise ValueError(
                f"{notification.event_type} {notification.id} has no URL: its contract was never pre-signed "
                "in the sandbox; build it with url="
            )


class Courier:
    """Delivers notifications, recording every attempt in ``log``."""

    def __init__(self, log: DeliveryLog) -> None:
        self.log = log

    def deliver(
        self, notification: OutgoingNotification, *, repeat: int = 1, delay: float = 0.0, wait: bool = True
    ) -> list[Delivery]:
        """Send ``notification`` ``repeat`` times, after ``delay`` seconds.

        The first attempt sends it exactly as built; each further one is ``signed_again()``. With
        ``wait=False`` this returns ``[]`` at once and the attempts land in the log later.
        """
        _check_addressed([notification])
        if repeat < 1:
            raise ValueError("repeat must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        attempts = [notification] * repeat
        cancelled = self.log.cancelled
        if wait:
            return self._send(attempts, delay, cancelled)
        threading.Thread(
            target=self._send, args=(attempts, delay, cancelled), name="papay-sandbox-notify", daemon=True
        ).start()
        return []

    def deliver_in_order(self, notifications: Sequence[OutgoingNotification]) -> list[Delivery]:
        """Send each notification once, in the order given, each after the previous one was answered."""
        _check_addressed(notifications)
        return self._send(notifications, 0.0, self.log.cancelled, resign_repeats=False)

    def _send(
        self,
        notifications: Sequence[OutgoingNotification],
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
            delivery = post(notification)
            if not self.log.append(delivery, cancelled):  # a reset happened while this one was in flight
                break
            made.append(delivery)
        return made

"""What a family of notifications gives the notify pipeline: the one thing written per family.

The pipeline (``services/notifications.py``) runs one sequence for every verified notification — lock the
subject's row, skip a repeat, check the event against our record, move, store the outcome, send the
signal — and its store (``notify_store``, or ``notify_postgresql`` on PostgreSQL) does the locking and
the writing. A family says only what is its own: how its resource is typed, which row it is about, what
to do when we have no such row, what must match, and how the state moves (through ``state.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.db.models import Model
from django.dispatch import Signal

from ..notifications import VerifiedNotification
from .state import Move


class Family(Protocol):
    """One family of notifications: ECOMMERCE_ENTRUST.* (contracts), REFUND.* (refunds)."""

    @property
    def model(self) -> type[Model]:
        """The subject's model (``Contract``): its row is locked, and updated with what the move changed."""

    @property
    def subject(self) -> str:
        """The name of ``Notification``'s foreign key to ``model``, and of the subject's argument to the signals."""

    @property
    def signals(self) -> Mapping[str, Signal]:
        """The event types the family handles, and the signal each one's move may send."""

    @property
    def after_commit(self) -> bool:
        """True: the move's signal is sent once the transaction committed, to every receiver (``send_robust``);
        False: inside it, where a receiver that raises rolls the move back (and WeChat Pay delivers again)."""

    def event(self, notification: VerifiedNotification) -> Any:
        """The resource, typed and checked as ours (merchant); InvalidNotification when it is not."""

    def key(self, event: Any) -> tuple[str, Any]:
        """The subject's row, as ``(unique field, value)``: what the store locks."""

    def create(self, event: Any) -> None:
        """An event for a subject we have no row of: create the row, or raise InvalidNotification.

        Must survive a concurrent delivery creating the same row (``get_or_create`` on the unique field).
        """

    def check(self, subject: Any, event: Any) -> None:
        """A leaked key must not forge states: raise InvalidNotification unless the event matches our record."""

    def move(self, subject: Any, event: Any) -> Move:
        """Apply the event to the locked subject in memory (``state.py``); the fields to write, signal, note."""

"""The notify sequence's store: how it locks a notification's subject and writes what the delivery did, by the ORM.

The sequence — what is locked, checked, moved and written, and in which order — is the pipeline's
(``services/notifications.py``); a store decides only how. This one works on every database and in every
case: SQLite, other databases, a subject we have no row of (its family creates it), a reprocessed delivery.
``notify_postgresql`` is the same store with a shorter way on PostgreSQL, falling back to this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.models import Model

from ..models import Notification
from .notify_family import Family


class Fallback(Exception):
    """This store cannot do the delivery its own way; the ORM store does it. Raised before anything is written."""


# What a reprocessed delivery's UPDATE writes: its outcome, what verifying it set, and its subject (each of
# Notification's foreign keys: the contract's, and those of the families to come).
OUTCOME_FIELDS = (
    "result",
    "processed",
    "processed_at",
    "error",
    "note",
    "verified",
    "notification_id",
    "event_type",
    "resource",
    *(field.name for field in Notification._meta.concrete_fields if field.is_relation),
)


class Store:
    """The ORM's way: ``select_for_update``, a query for the duplicate, ``save(update_fields=…)``, ``save()``."""

    @contextmanager
    def atomic(self, *, listened: bool) -> Iterator[None]:
        """The one transaction of a delivery's processing. ``listened``: a signal receiver may run inside it."""
        with transaction.atomic():
            yield

    def lock(self, family: Family, event: Any, delivery: Notification) -> tuple[Any, int | None]:
        """The subject's row, locked (created by its family when we have none), and the id of an earlier
        processed delivery of the same notification, if any."""
        field, value = family.key(event)
        # No ORDER BY (the Meta ordering, or .first()'s): the key is unique.
        locked = family.model._default_manager.select_for_update().order_by()
        found = list(locked.filter(**{field: value}))
        if not found:
            family.create(event)
            found = [locked.get(**{field: value})]
        # Its own statement, after the lock: under READ COMMITTED it sees whatever the lock's holder committed.
        return found[0], earlier_delivery(delivery)

    def write(self, delivery: Notification, subject: Model | None = None, fields: Iterable[str] = ()) -> None:
        """The subject's changed fields (if any), then the delivery's row."""
        if subject is not None and fields:
            subject.save(update_fields=fields)
        self.save(delivery)

    def save(self, delivery: Notification, *, durable: bool = True) -> None:
        """The delivery's row with its outcome: an INSERT, or for a reprocessed delivery an UPDATE.

        ``durable=False`` (a delivery nothing vouches for) lets a store commit without waiting for the disk;
        this one always waits (see ``notify_postgresql.PostgreSQLStore.save``)."""
        if delivery._state.adding:
            delivery.save()
        else:
            delivery.save(update_fields=OUTCOME_FIELDS)


def earlier_delivery(delivery: Notification) -> int | None:
    """The id of an earlier verified, processed delivery of the same notification (the partial index's rows)."""
    earlier = Notification.objects.filter(notification_id=delivery.notification_id, verified=True, processed=True)
    if not delivery._state.adding:
        earlier = earlier.exclude(pk=delivery.pk)
    return next(iter(earlier.order_by("pk").values_list("pk", flat=True)[:1]), None)

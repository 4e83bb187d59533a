"""The notify pipeline: verify → type the event → its family's handler, in one sequence, exactly once.

A wrong answer here loses money: a forged notification must never move a contract, and a real one
must move it once, however often and in whatever order WeChat Pay delivers it.

Every delivery goes the same way. ``receive_notification`` verifies and decrypts it (``notifications.verify``,
pure CPU) and looks its ``event_type`` up in ``FAMILIES``: the part before the first dot names the family, and
the family's ``signals`` list the types it handles (any other type is stored ``unknown_event`` and
acknowledged). The family types the resource, and then one sequence, written once here (``_sequence``),
applies it in one transaction: lock the subject's row, skip a repeat of an earlier delivery, check the event
against our record, move the state (``state.py``: in memory, returning the fields to write), store the
delivery's row with its outcome, send the signal. A store beneath it decides how to lock and write:
``notify_store.Store`` by the ORM (every database), or on PostgreSQL ``notify_postgresql.PostgreSQLStore``,
the same in two round trips, which hands anything it cannot do alike back to the ORM store.

To add a family (as refunds did: REFUND.SUCCESS, .ABNORMAL, .CLOSED on the same view), write its handler
— a ``notify_family.Family``: ``model``, ``subject``, ``signals``, ``after_commit``, ``event``, ``key``,
``create``, ``check``, ``move`` (its moves in ``state.py``) — in ``services/notify_<family>.py``, give
``Notification`` a foreign key named ``subject``, and add one row to ``FAMILIES`` (``"REFUND": REFUNDS``).
The sequence and the stores stay as they are. A family whose ``after_commit`` is set has its signal sent
once the transaction committed, to every receiver (``send_robust``: one that raises is logged and undoes
nothing), as refunds' are; the contracts' go out inside it, where a receiver that raises rolls it back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf, notifications
from ..exceptions import InvalidNotification, NotReprocessable
from ..models import Notification, storable
from . import notify_postgresql
from .certificate_store import notification_keys
from .notify_contracts import CONTRACTS
from .notify_family import Family
from .notify_refunds import REFUNDS
from .notify_store import Fallback, Store

logger = logging.getLogger("django_papay.notifications")

Result = Notification.Result


def receive_notification(delivery: Notification, headers: Mapping[str, str], body: bytes) -> Notification:
    """Verify, decrypt and check ``delivery`` (built by the view, not yet saved), then store it with what it did.

    The checks are pure CPU with no side effect, so they come first; the delivery's row is still written
    in every case, and a verified one in the same transaction as the state change it caused: the lock,
    the duplicate check, the change, the row, one commit. A delivery we reject costs one autocommit
    INSERT — one whose signature fails does not even wait for the disk — so a flood of forgeries stays
    cheap. When processing fails (a receiver raises, the database
    errs) the transaction rolls back whole, and the row is then stored on its own, marked failed.

    Raises InvalidNotification for a notification we will never accept (the delivery is stored rejected,
    no contract changes). Any other exception means processing failed: the delivery is stored failed
    and WeChat Pay should deliver again.
    """
    try:
        verified = notifications.verify(headers, body, public_keys=notification_keys(), apiv3_key=conf.apiv3_key())
    except InvalidNotification as exc:
        delivery.notification_id, delivery.event_type = notifications.peek(body)  # what it says it is, unverified
        # A row nothing vouches for does not wait for the disk (``PostgreSQLStore.save``): a flood stays cheap.
        _store_or_log(delivery, Result.REJECTED, error=f"{exc.reason}: {exc}", durable=not exc.unauthenticated)
        _rejections.warn(delivery, exc)
        raise
    except Exception as exc:  # a bug of ours, not the sender's: recorded, and WeChat Pay delivers again
        delivery.notification_id, delivery.event_type = notifications.peek(body)
        _store_or_log(delivery, Result.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("notification delivery #%s could not be verified", delivery.pk)
        raise
    delivery.verified = True
    # As stored (``storable``: a signed id may still carry NUL or a lone surrogate), so that the duplicate
    # check compares what the database holds.
    delivery.notification_id, delivery.event_type = storable(verified.id)[:64], storable(verified.event_type)[:64]
    delivery.resource = verified.resource
    return _process(delivery, verified)


def reprocess_notification(delivery: Notification) -> Notification:
    """Apply a verified delivery whose processing failed (say, a signal receiver raised) once more.

    Uses the resource decrypted and stored when it arrived: its signature was checked then, and its
    timestamp is long past the 300-second window now. Raises NotReprocessable for any other delivery.
    """
    if not (delivery.verified and delivery.result == Result.FAILED and isinstance(delivery.resource, dict)):
        raise NotReprocessable(_("Only a verified notification whose processing failed can be reprocessed."))
    verified = notifications.VerifiedNotification(delivery.notification_id, delivery.event_type, {}, delivery.resource)
    return _process(delivery, verified)


# The families, by the part of ``event_type`` before its first dot; each handles the types in its ``signals``.
FAMILIES: dict[str, Family] = {"ECOMMERCE_ENTRUST": CONTRACTS, "REFUND": REFUNDS}


def family_of(event_type: str) -> Family | None:
    """The family that handles ``event_type``; None: not one we handle."""
    family = FAMILIES.get(event_type.partition(".")[0])
    return family if family is not None and event_type in family.signals else None


def _process(delivery: Notification, verified: notifications.VerifiedNotification) -> Notification:
    stored = not delivery._state.adding  # a reprocessed delivery: its row is updated, never inserted again
    family = family_of(verified.event_type)
    try:
        if family is None:
            note = _("Event type %(type)s is not handled.") % {"type": verified.event_type}
            _store(delivery, Result.UNKNOWN_EVENT, note=note)
            return delivery
        event, signal = family.event(verified), family.signals[verified.event_type]
        try:
            committed = _sequence(delivery, family, event, signal, _store_for(delivery, family))
        except Fallback:  # raised before anything was written
            committed = _sequence(delivery, family, event, signal, Store())
    except InvalidNotification as exc:
        _store_after_rollback(delivery, family, stored, Result.REJECTED, error=f"{exc.reason}: {exc}")
        logger.warning("notification %s rejected: %s", delivery.notification_id, exc)
        raise
    except Exception as exc:
        _store_after_rollback(delivery, family, stored, Result.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("notification %s failed; WeChat Pay will deliver it again", delivery.notification_id)
        raise
    logger.info("notification %s %s: %s", delivery.notification_id, delivery.event_type, delivery.result)
    if committed is not None:
        _announce(committed, family, delivery)
    return delivery


def _sequence(delivery: Notification, family: Family, event: Any, signal: Signal, store: Store) -> Signal | None:
    """One transaction: lock the subject, skip repeats, apply the event if it is the newest, store the row.

    The one notify sequence, for every family and every store (``signal``: the one the move may send).
    Whatever raises in here rolls all of it back, the row included. Returns the signal to send once it has
    committed (an ``after_commit`` family's), else None.
    """
    with store.atomic(listened=not family.after_commit and signal.has_listeners(family.model)):
        subject, earlier = store.lock(family, event, delivery)
        setattr(delivery, family.subject, subject)
        if earlier is not None:
            outcome(delivery, Result.DUPLICATE, note=duplicate_note(earlier))
            store.write(delivery)
            return None
        family.check(subject, event)
        move = family.move(subject, event)  # in memory: the store writes what it changed
        outcome(delivery, Result.IGNORED if move.note else Result.APPLIED, note=move.note)
        store.write(delivery, subject, move.fields)
        if move.signal is not None and family.after_commit:
            return move.signal  # sent by the caller, once the block has committed
        if move.signal is not None:  # inside the transaction: a receiver that raises undoes the change
            move.signal.send(sender=family.model, notification=delivery, **{family.subject: subject})
    return None


def _announce(signal: Signal, family: Family, delivery: Notification) -> None:
    """An ``after_commit`` family's signal, to every receiver: one that raises is logged and undoes nothing."""
    subject = getattr(delivery, family.subject)
    for receiver, result in signal.send_robust(sender=family.model, notification=delivery, **{family.subject: subject}):
        if isinstance(result, Exception):
            logger.error(
                "notification %s moved %s %s; a receiver of its signal (%s) raised: %r",
                delivery.notification_id,
                family.subject,
                subject,
                getattr(receiver, "__qualname__", receiver),
                result,
                exc_info=(type(result), result, result.__traceback__),
            )


def duplicate_note(earlier: int) -> str:
    return _("Repeat of delivery #%(pk)s.") % {"pk": earlier}


def outcome(delivery: Notification, result: str, *, error: str = "", note: str = "") -> None:
    """Set the delivery's result and what goes with it, in memory."""
    delivery.result = result
    delivery.processed = result in PROCESSED
    delivery.processed_at = timezone.now() if delivery.processed else None
    delivery.error, delivery.note = error, note


def _store_for(delivery: Notification, family: Family | None = None) -> Store:
    """PostgreSQL's short way where it writes as the ORM would, else the ORM store."""
    models = (Notification,) if family is None else (Notification, family.model)
    return notify_postgresql.PostgreSQLStore() if notify_postgresql.usable(delivery, models) else Store()


def _store(delivery: Notification, result: str, *, error: str = "", note: str = "", durable: bool = True) -> None:
    """Write the delivery's row with its result, outside any sequence: a rejected, failed or unknown one."""
    outcome(delivery, result, error=error, note=note)
    _store_for(delivery).save(delivery, durable=durable)


def _store_after_rollback(
    delivery: Notification, family: Family | None, stored: bool, result: str, *, error: str = ""
) -> None:
    """Store a failed or rejected outcome on its own, once the transaction that tried to apply it rolled back."""
    if not stored and not delivery._state.adding:  # inserted by the rolled-back transaction: not there now
        delivery.pk, delivery._state.adding = None, True
    if family is not None:
        subject_id = getattr(delivery, f"{family.subject}_id")  # the foreign key's column: no query
        if subject_id is not None and not family.model._default_manager.filter(pk=subject_id).exists():
            setattr(delivery, family.subject, None)  # created in the transaction that was just rolled back
    _store_or_log(delivery, result, error=error)


def _store_or_log(delivery: Notification, result: str, *, error: str = "", durable: bool = True) -> None:
    """``_store`` where it is the delivery's last chance to be recorded: if even that fails (the database is
    locked, down or full), say why in the log before the view answers 500 and WeChat Pay delivers again."""
    try:
        _store(delivery, result, error=error, durable=durable)
    except Exception:
        logger.exception("a notification delivery could not be stored; WeChat Pay will deliver it again")
        raise


class _Rejections:
    """Warnings about deliveries that fail verification, at most one per ``REJECTION_LOG_SECONDS`` per process.

    Each one is in the delivery log anyway (stored rejected, with its reason); a forger's flood must not flood
    the site's log as well, nor pay for a line each. A warning says how many went unlogged before it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = -math.inf
        self._unlogged = 0

    def warn(self, delivery: Notification, error: InvalidNotification) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < REJECTION_LOG_SECONDS:
                self._unlogged += 1
                return
            self._last, unlogged, self._unlogged = now, self._unlogged, 0
        more = f" ({unlogged} more rejected since the last warning)" if unlogged else ""
        logger.warning("notification delivery #%s rejected: %s%s", delivery.pk, error, more)


REJECTION_LOG_SECONDS = 10.0
_rejections = _Rejections()

PROCESSED = frozenset({Result.APPLIED, Result.DUPLICATE, Result.IGNORED, Result.UNKNOWN_EVENT})

"""Apply WeChat Pay's contract notifications: verified first, then exactly once, in operate_time order.

A wrong answer here loses money: a forged notification must never move a contract, and a real one
must move it once, however often and in whatever order WeChat Pay delivers it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf, notifications
from ..exceptions import InvalidNotification, NotReprocessable
from ..models import Contract, Notification, out_contract_code_validator, storable
from ..notifications import ContractEvent
from ..signals import contract_signed, contract_terminated
from ..wechatpay import SIGN_EVENT, TERMINATE_EVENT
from . import notify_postgresql, state
from .certificates import notification_keys

logger = logging.getLogger("django_papay.notifications")

Result = Notification.Result


def receive_notification(delivery: Notification, headers: Mapping[str, str], body: bytes) -> Notification:
    """Verify, decrypt and check ``delivery`` (built by the view, not yet saved), then store it with what it did.

    The checks are pure CPU with no side effect, so they come first; the delivery's row is still written
    in every case, and a verified one in the same transaction as the contract change it caused: the lock,
    the duplicate check, the change, the row, one commit. A delivery we reject costs one autocommit
    INSERT, so a flood of forgeries stays cheap. When processing fails (a receiver raises, the database
    errs) the transaction rolls back whole, and the row is then stored on its own, marked failed.

    Raises InvalidNotification for a notification we will never accept (the delivery is stored rejected,
    no contract changes). Any other exception means processing failed: the delivery is stored failed
    and WeChat Pay should deliver again.
    """
    try:
        verified = notifications.verify(headers, body, public_keys=notification_keys(), apiv3_key=conf.apiv3_key())
    except InvalidNotification as exc:
        _store_or_log(delivery, Result.REJECTED, error=f"{exc.reason}: {exc}")
        logger.warning("notification delivery #%s rejected: %s", delivery.pk, exc)
        raise
    except Exception as exc:  # a bug of ours, not the sender's: recorded, and WeChat Pay delivers again
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


def _process(delivery: Notification, verified: notifications.VerifiedNotification) -> Notification:
    stored = not delivery._state.adding  # a reprocessed delivery: its row is updated, never inserted again
    try:
        if verified.event_type not in SIGNALS:
            note = _("Event type %(type)s is not handled.") % {"type": verified.event_type}
            _store(delivery, Result.UNKNOWN_EVENT, note=note)
            return delivery
        event = notifications.contract_event(verified)
        if event.mchid != conf.mchid():
            raise InvalidNotification(
                "mchid", _("The notification is for merchant %(mchid)s, not ours.") % {"mchid": event.mchid}
            )
        if not notify_postgresql.apply(delivery, event, SIGNALS[event.event_type]):
            _apply(delivery, event)
    except InvalidNotification as exc:
        _store_after_rollback(delivery, stored, Result.REJECTED, error=f"{exc.reason}: {exc}")
        logger.warning("notification %s rejected: %s", delivery.notification_id, exc)
        raise
    except Exception as exc:
        _store_after_rollback(delivery, stored, Result.FAILED, error=f"{type(exc).__name__}: {exc}")  # logs if it fails
        logger.exception("notification %s failed; WeChat Pay will deliver it again", delivery.notification_id)
        raise
    logger.info("notification %s %s: %s", delivery.notification_id, delivery.event_type, delivery.result)
    return delivery


def _apply(delivery: Notification, event: ContractEvent) -> None:
    """One transaction: lock the contract, skip repeats, apply the event if it is the newest, store the row.

    The ORM's path, for every database and every case; ``notify_postgresql`` has a shorter one for the
    common case on PostgreSQL. Whatever raises in here rolls all of it back, the row included.
    """
    with transaction.atomic():
        contract = _locked_contract(event)
        delivery.contract = contract
        # Its own statement, after the lock: under READ COMMITTED it sees whatever the lock's holder committed.
        already = earlier_delivery(delivery)
        if already is not None:
            _store(delivery, Result.DUPLICATE, note=duplicate_note(already))
            return
        check_matches(contract, event)
        moved = move(contract, event)
        if moved.fields:
            contract.save(update_fields=moved.fields)
        _store(delivery, Result.IGNORED if moved.note else Result.APPLIED, note=moved.note)
        if moved.signal is not None:  # inside the transaction: a receiver that raises undoes the change
            moved.signal.send(sender=Contract, contract=contract, notification=delivery)


def earlier_delivery(delivery: Notification) -> int | None:
    """The id of an earlier verified, processed delivery of the same notification (the partial index's rows)."""
    earlier = Notification.objects.filter(notification_id=delivery.notification_id, verified=True, processed=True)
    if not delivery._state.adding:
        earlier = earlier.exclude(pk=delivery.pk)
    return next(iter(earlier.order_by("pk").values_list("pk", flat=True)[:1]), None)


def duplicate_note(earlier: int) -> str:
    return _("Repeat of delivery #%(pk)s.") % {"pk": earlier}


def _locked_contract(event: ContractEvent) -> Contract:
    """The contract row, locked; created from the event when it was signed through another channel."""
    # No ORDER BY (the Meta ordering, or .first()'s): the code is unique.
    locked = Contract.objects.select_for_update().order_by()
    found = list(locked.filter(out_contract_code=event.out_contract_code))
    if not found:
        _check_signed_elsewhere(event)
        # get_or_create survives a concurrent delivery creating the same contract (unique code).
        Contract.objects.get_or_create(
            out_contract_code=event.out_contract_code,
            defaults={"plan_id": event.plan_id, "appid": event.appid, "mchid": event.mchid, "openid": event.openid},
        )
        found = [locked.get(out_contract_code=event.out_contract_code)]
    return found[0]


def _check_signed_elsewhere(event: ContractEvent) -> None:
    """A contract we have no record of is created only under one of our AppIDs, with a code we could have made."""
    try:
        out_contract_code_validator(event.out_contract_code)
    except ValidationError:
        raise InvalidNotification(
            "out_contract_code",
            _("out_contract_code %(code)s breaks WeChat Pay's rule (1 to 32 digits and ASCII letters).")
            % {"code": event.out_contract_code},
        ) from None
    if event.appid not in conf.appids():
        raise InvalidNotification(
            "appid",
            _("appid %(got)s of unknown contract %(code)s is not one of this site's AppIDs.")
            % {"got": event.appid, "code": event.out_contract_code},
        )


def check_matches(contract: Contract, event: ContractEvent) -> None:
    """A leaked key must not become forged contract states: the event must match our own record."""
    if event.plan_id != contract.plan_id:
        raise InvalidNotification(
            "plan_id",
            _("plan_id %(got)s is not the contract's plan %(want)s.")
            % {"got": event.plan_id, "want": contract.plan_id},
        )
    expected_appid = contract.appid or conf.appid()
    if expected_appid and event.appid != expected_appid:
        raise InvalidNotification(
            "appid",
            _("appid %(got)s is not the contract's AppID %(want)s.") % {"got": event.appid, "want": expected_appid},
        )


def move(contract: Contract, event: ContractEvent) -> state.Move:
    """Apply the event to the locked contract in memory (``state``: the newest report wins); says what changed."""
    return _apply_sign(contract, event) if event.event_type == SIGN_EVENT else _apply_terminate(contract, event)


def _apply_sign(contract: Contract, event: ContractEvent) -> state.Move:
    return state.mark_signed(
        contract,
        at=event.operate_time,
        openid=event.openid,
        expires_at=event.contract_expired_time,
        contract_id=event.contract_id,
        mchid=event.mchid,
    )


def _apply_terminate(contract: Contract, event: ContractEvent) -> state.Move:
    return state.mark_terminated(
        contract,
        at=event.operate_time,
        mode=event.contract_termination_mode,
        openid=event.openid,
        contract_id=event.contract_id,
        mchid=event.mchid,
    )


def outcome(delivery: Notification, result: str, *, error: str = "", note: str = "") -> None:
    """Set the delivery's result and what goes with it, in memory."""
    delivery.result = result
    delivery.processed = result in PROCESSED
    delivery.processed_at = timezone.now() if delivery.processed else None
    delivery.error, delivery.note = error, note


def _store(delivery: Notification, result: str, *, error: str = "", note: str = "") -> None:
    """Write the delivery's row with its result: an INSERT, or for a reprocessed delivery an UPDATE."""
    outcome(delivery, result, error=error, note=note)
    if delivery._state.adding:
        if not notify_postgresql.insert(delivery):
            delivery.save()
    else:
        delivery.save(update_fields=OUTCOME_FIELDS)


def _store_after_rollback(delivery: Notification, stored: bool, result: str, *, error: str = "") -> None:
    """Store a failed or rejected outcome on its own, once the transaction that tried to apply it rolled back."""
    if not stored and not delivery._state.adding:  # inserted by the rolled-back transaction: not there now
        delivery.pk, delivery._state.adding = None, True
    if delivery.contract_id is not None and not Contract.objects.filter(pk=delivery.contract_id).exists():
        delivery.contract = None  # created in the transaction that was just rolled back
    _store_or_log(delivery, result, error=error)


def _store_or_log(delivery: Notification, result: str, *, error: str = "") -> None:
    """``_store`` where it is the delivery's last chance to be recorded: if even that fails (the database is
    locked, down or full), say why in the log before the view answers 500 and WeChat Pay delivers again."""
    try:
        _store(delivery, result, error=error)
    except Exception:
        logger.exception("a notification delivery could not be stored; WeChat Pay will deliver it again")
        raise


SIGNALS = {SIGN_EVENT: contract_signed, TERMINATE_EVENT: contract_terminated}  # what each event's move may send
PROCESSED = frozenset({Result.APPLIED, Result.DUPLICATE, Result.IGNORED, Result.UNKNOWN_EVENT})
OUTCOME_FIELDS = (
    "result",
    "processed",
    "processed_at",
    "error",
    "note",
    "contract",
    "verified",
    "notification_id",
    "event_type",
    "resource",
)

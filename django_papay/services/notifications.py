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
from ..wechatpay import SIGN_EVENT, TERMINATE_EVENT
from . import state
from .certificates import notification_keys

logger = logging.getLogger("django_papay.notifications")

Result = Notification.Result


def receive_notification(delivery: Notification, headers: Mapping[str, str], body: bytes) -> Notification:
    """Store ``delivery`` (built by the view, not yet saved), then verify, decrypt, check and apply it.

    One transaction, committed whatever happens: the log row always stays, while a failed
    processing rolls back to a savepoint, so its contract change is undone. (One commit per
    delivery, not one per step: under load the commits are most of the cost.)

    Raises InvalidNotification for a notification we will never accept (the delivery is marked
    rejected, no contract changes). Any other exception means processing failed: the delivery is
    marked failed and WeChat Pay should deliver again.
    """
    error: Exception | None = None
    try:
        with transaction.atomic():
            delivery.save()
            try:
                _receive(delivery, headers, body)
            except Exception as exc:  # recorded on the row by _receive; re-raised once the row is committed
                error = exc
    except Exception:  # the row itself could not be stored or committed (database locked, down, full)
        logger.exception("a notification delivery could not be stored; WeChat Pay will deliver it again")
        raise
    if error is not None:
        raise error
    return delivery


def _receive(delivery: Notification, headers: Mapping[str, str], body: bytes) -> None:
    try:
        verified = notifications.verify(headers, body, public_keys=notification_keys(), apiv3_key=conf.apiv3_key())
    except InvalidNotification as exc:
        _finish(delivery, Result.REJECTED, error=f"{exc.reason}: {exc}")
        logger.warning("notification delivery #%s rejected: %s", delivery.pk, exc)
        raise
    except Exception as exc:  # a bug of ours, not the sender's: recorded, and WeChat Pay delivers again
        _finish(delivery, Result.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("notification delivery #%s could not be verified", delivery.pk)
        raise
    delivery.verified = True
    # As stored (``storable``: a signed id may still carry NUL or a lone surrogate), so that the duplicate
    # check below compares what the database holds.
    delivery.notification_id, delivery.event_type = storable(verified.id)[:64], storable(verified.event_type)[:64]
    delivery.resource = verified.resource
    _process(delivery, verified)  # its _finish saves these fields with the result


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
    try:
        if verified.event_type not in (SIGN_EVENT, TERMINATE_EVENT):
            _finish(
                delivery,
                Result.UNKNOWN_EVENT,
                note=_("Event type %(type)s is not handled.") % {"type": verified.event_type},
            )
            return delivery
        event = notifications.contract_event(verified)
        if event.mchid != conf.mchid():
            raise InvalidNotification(
                "mchid", _("The notification is for merchant %(mchid)s, not ours.") % {"mchid": event.mchid}
            )
        with transaction.atomic():
            _apply(delivery, event)
    except InvalidNotification as exc:
        _finish(delivery, Result.REJECTED, error=f"{exc.reason}: {exc}")
        logger.warning("notification %s rejected: %s", delivery.notification_id, exc)
        raise
    except Exception as exc:
        _finish(delivery, Result.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.exception("notification %s failed; WeChat Pay will deliver it again", delivery.notification_id)
        raise
    logger.info("notification %s %s: %s", delivery.notification_id, delivery.event_type, delivery.result)
    return delivery


def _apply(delivery: Notification, event: ContractEvent) -> None:
    """Inside a transaction: lock the contract, skip repeats, apply the event if it is the newest."""
    contract = _locked_contract(event)
    delivery.contract = contract
    already = (
        Notification.objects.filter(notification_id=delivery.notification_id, verified=True, processed=True)
        .exclude(pk=delivery.pk)
        .order_by("pk")
        .values_list("pk", flat=True)  # only the id: the earlier row's body and headers are not needed
        .first()
    )
    if already is not None:
        _finish(delivery, Result.DUPLICATE, note=_("Repeat of delivery #%(pk)s.") % {"pk": already})
        return
    _check_matches(contract, event)
    apply = _apply_sign if event.event_type == SIGN_EVENT else _apply_terminate
    signal, note = apply(contract, event)
    _finish(delivery, Result.IGNORED if note else Result.APPLIED, note=note)
    if signal is not None:
        signal.send(sender=Contract, contract=contract, notification=delivery)


def _locked_contract(event: ContractEvent) -> Contract:
    """The contract row, locked; created from the event when it was signed through another channel."""
    locked = Contract.objects.select_for_update()
    contract = locked.filter(out_contract_code=event.out_contract_code).first()
    if contract is None:
        _check_signed_elsewhere(event)
        # get_or_create survives a concurrent delivery creating the same contract (unique code).
        Contract.objects.get_or_create(
            out_contract_code=event.out_contract_code,
            defaults={"plan_id": event.plan_id, "appid": event.appid, "mchid": event.mchid, "openid": event.openid},
        )
        contract = locked.get(out_contract_code=event.out_contract_code)
    return contract


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


def _check_matches(contract: Contract, event: ContractEvent) -> None:
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


def _finish(delivery: Notification, result: str, *, error: str = "", note: str = "") -> None:
    if error and delivery.contract_id is not None and not Contract.objects.filter(pk=delivery.contract_id).exists():
        delivery.contract = None  # created in the transaction that was just rolled back
    delivery.result = result
    delivery.processed = result in (Result.APPLIED, Result.DUPLICATE, Result.IGNORED, Result.UNKNOWN_EVENT)
    delivery.processed_at = timezone.now() if delivery.processed else None
    delivery.error, delivery.note = error, note
    delivery.save(
        update_fields=[
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
        ]
    )

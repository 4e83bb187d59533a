"""Contracts at WeChat Pay: pre-sign (open a signing session), query, and terminate by merchant contract code.

Each is an ``Operation`` (``operations.py``): checked before anything is sent, WeChat Pay's errors
recorded on the contract and re-raised, the answer applied under the contract's row lock. A pre-sign
session lasts 2 hours; an expired one can be replaced by pre-signing again. ``query`` is the documented
fallback when a notification never arrives: it maps ``contract_state`` onto the contract under the same
ordering rule as notifications (``state.py``), so a late or stale answer never moves a contract backwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf, wechatpay
from ..client import Answer
from ..display import local_time
from ..exceptions import ContractStateError, InvalidResponseError
from ..models import Contract, new_out_contract_code
from ..wechatpay import NOT_SIGNED, SIGNED, TERMINATED, parse_rfc3339
from . import state
from .operations import FINAL_STATES, Call, Operation, check_answer, run

# What a pre-sign's answer writes on the contract.
PRESIGNED_FIELDS = (
    "pre_entrustweb_id",
    "appid",
    "mchid",
    "presigned_at",
    "presign_channel",
    "status",
    "last_error",
    "last_error_message",
    "updated_at",
)


def contract_path(contract: Contract) -> str:
    return wechatpay.path(
        wechatpay.CONTRACT_PATH, plan_id=contract.plan_id, out_contract_code=contract.out_contract_code
    )


# --- pre-sign ---------------------------------------------------------------------------------


def presign_payload(contract: Contract, channel: str = Contract.Channel.APP) -> dict[str, Any]:
    """The pre-sign request body for ``contract``, validated against WeChat Pay's field rules."""
    contract.full_clean()
    appid = contract.appid or conf.appid()
    if not appid:
        raise ValidationError({"appid": _('Set the contract\'s AppID or PAPAY["APPID"].')})
    payload: dict[str, Any] = {
        "appid": appid,
        "plan_id": contract.plan_id,
        "out_contract_code": contract.out_contract_code,
        "contract_display_account": contract.contract_display_account,
        "notify_url": conf.notify_url(),
    }
    if channel == Contract.Channel.APP:  # the mini-program pre-sign has neither field
        return_app = conf.return_app()
        if return_app is not None:
            payload["return_app"] = return_app
        if contract.attach:
            payload["attach"] = contract.attach
    return payload


def check_can_presign(contract: Contract) -> None:
    """Raise ContractStateError unless a new signing session makes sense for ``contract``."""
    if contract.status in FINAL_STATES:
        raise ContractStateError(
            _("Contract %(code)s is %(status)s and cannot be pre-signed again.")
            % {"code": contract.out_contract_code, "status": contract.get_status_display()}
        )
    if contract.presign_session_is_live():
        raise ContractStateError(
            _("Contract %(code)s already has a pre-sign session, valid until %(expires)s.")
            % {"code": contract.out_contract_code, "expires": local_time(contract.presign_expires_at)}
        )


def _prepare(channel: str):
    path = wechatpay.APP_PRESIGN_PATH if channel == Contract.Channel.APP else wechatpay.MINI_PROGRAM_PRESIGN_PATH

    def prepare(contract: Contract) -> Call:
        check_can_presign(contract)
        if not contract.out_contract_code:
            contract.out_contract_code = new_out_contract_code()
        payload = presign_payload(contract, channel)
        if contract.pk is None:
            contract.save()
        return Call("POST", path, payload)

    return prepare


def _apply(channel: str):
    def apply(contract: Contract, call: Call, answer: Answer) -> None:
        check_answer(answer, contract, expect_id="pre_entrustweb_id")
        with transaction.atomic():
            locked = Contract.objects.select_for_update().get(pk=contract.pk)
            # Another pre-sign (a second staff member, another cron host) or a notification may have
            # won while we waited: keep its result rather than overwrite it.
            if locked.status in FINAL_STATES or locked.presign_session_is_live():
                raise ContractStateError(
                    _("Contract %(code)s changed during the pre-sign (now %(status)s); nothing was stored.")
                    % {"code": locked.out_contract_code, "status": locked.get_status_display()}
                )
            locked.pre_entrustweb_id = answer.data["pre_entrustweb_id"]
            locked.appid = (call.payload or {})["appid"]  # what was sent: the contract's own, or the site's default
            locked.mchid = str(answer.data.get("mchid") or conf.mchid())
            locked.presigned_at = call.prepared_at
            locked.presign_channel = channel
            locked.status = Contract.Status.PRESIGNED
            locked.set_error("")
            locked.save(update_fields=PRESIGNED_FIELDS)
        for name in PRESIGNED_FIELDS:
            setattr(contract, name, getattr(locked, name))

    return apply


PRESIGN = Operation(_prepare(Contract.Channel.APP), _apply(Contract.Channel.APP), fails_contract=True)
PRESIGN_MINI_PROGRAM = Operation(
    _prepare(Contract.Channel.MINI_PROGRAM), _apply(Contract.Channel.MINI_PROGRAM), fails_contract=True
)
# The pre-sign for each channel, written once: the App's endpoints, the tasks and dispatch look it up here.
PRESIGN_BY_CHANNEL: dict[str, Operation] = {
    Contract.Channel.APP: PRESIGN,
    Contract.Channel.MINI_PROGRAM: PRESIGN_MINI_PROGRAM,
}


def presign(contract: Contract) -> Contract:
    """Open an APP signing session for ``contract`` and store its ``pre_entrustweb_id``.

    Raises ValidationError (nothing sent) when the contract's fields break WeChat Pay's rules,
    ContractStateError when it is signed, terminated or already has a live session, and
    WeChatPayError (after recording it in ``last_error``) when WeChat Pay says no.
    """
    return run(PRESIGN, contract)


def presign_mini_program(contract: Contract) -> Contract:
    """Like ``presign``, for a mini-program: it then opens WeChat Pay's signing mini-program with the id."""
    return run(PRESIGN_MINI_PROGRAM, contract)


def launch_parameters(contract: Contract, now: datetime | None = None) -> dict[str, Any] | None:
    """What the App needs to open WeChat's signing page for ``contract``'s live session (None without one).

    An APP pre-sign is opened through the OpenSDK (Android ``WXOpenBusinessWebview.Req``, iOS
    ``WXOpenBusinessWebViewReq``) with ``businessType`` 12 and ``queryInfo``; a mini-program pre-sign by
    ``wx.navigateToMiniProgram`` to WeChat Pay's signing mini-program, the id in ``extraData``.
    """
    if not contract.presign_session_is_live(now):
        return None
    query = {"pre_entrustweb_id": contract.pre_entrustweb_id}
    if contract.presign_channel == Contract.Channel.MINI_PROGRAM:
        return {**wechatpay.SIGNING_MINI_PROGRAM, "extraData": query}
    return {"businessType": wechatpay.OPENSDK_BUSINESS_TYPE, "queryInfo": query}


def expire_presigns(now: datetime | None = None) -> int:
    """Mark pre-signed contracts whose 2-hour session ran out as EXPIRED; returns how many."""
    now = now or timezone.now()
    return Contract.objects.filter(
        status=Contract.Status.PRESIGNED, presigned_at__lte=now - wechatpay.PRESIGN_SESSION
    ).update(status=Contract.Status.EXPIRED, updated_at=now)


# --- query -----------------------------------------------------------------------------------


def _prepare_query(contract: Contract) -> Call:
    if contract.pk is None or not contract.out_contract_code:
        raise ContractStateError(_("Only a saved contract with a merchant contract code can be queried."))
    if contract.presigned_at is None and contract.status in (Contract.Status.CREATED, Contract.Status.FAILED):
        # WeChat Pay knows a contract from its pre-sign (or its signing elsewhere): asking about one it never
        # saw only records a 404.
        raise ContractStateError(
            _("Contract %(code)s was never pre-signed: WeChat Pay does not know it yet.")
            % {"code": contract.out_contract_code}
        )
    return Call("GET", contract_path(contract))


def _apply_query(contract: Contract, call: Call, answer: Answer) -> None:
    check_answer(answer, contract)
    data = answer.data
    contract_state = data.get("contract_state")
    if contract_state not in wechatpay.CONTRACT_STATES:
        raise InvalidResponseError(
            f"unknown contract_state {contract_state!r}",
            code="ANSWER_MISMATCH",
            status=answer.status,
            request_id=answer.request_id,
        )
    signed_at = parse_rfc3339(data.get("contract_signed_time"))
    given = data.get("contract_terminate_info")
    info: dict[str, Any] = given if isinstance(given, dict) else {}
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        moves = []
        if contract_state in (SIGNED, TERMINATED) and signed_at and locked.status != Contract.Status.TERMINATED:
            moves.append(
                state.mark_signed(
                    locked,
                    at=signed_at,
                    openid=str(data.get("openid") or ""),
                    expires_at=parse_rfc3339(data.get("contract_expired_time")),
                    contract_id=str(data.get("contract_id") or ""),
                    mchid=str(data.get("mchid") or ""),
                )
            )
        if contract_state == TERMINATED:
            moves.append(
                state.mark_terminated(
                    locked,
                    at=parse_rfc3339(info.get("contract_terminated_time")) or call.prepared_at,
                    mode=str(info.get("contract_termination_mode") or ""),
                    remark=str(info.get("contract_termination_remark") or ""),
                    openid=str(data.get("openid") or ""),
                    contract_id=str(data.get("contract_id") or ""),
                )
            )
        if contract_state == NOT_SIGNED and locked.status == Contract.Status.PRESIGNED:
            if not locked.presign_session_is_live(call.prepared_at):
                locked.status = Contract.Status.EXPIRED
        locked.queried_at = call.prepared_at
        cleared = locked.set_error("")
        moved = {name for move in moves for name in move.fields}  # the moves set them; one UPDATE writes all
        locked.save(update_fields=sorted(moved | {"queried_at", "status", *cleared, "updated_at"}))
        # One signal per state change; a contract first seen terminated went through signed too.
        for move in moves:
            if move.signal is not None:
                move.signal.send(sender=Contract, contract=locked, notification=None)
    contract.refresh_from_db()


QUERY = Operation(_prepare_query, _apply_query)


def query(contract: Contract) -> Contract:
    """Ask WeChat Pay for the contract's state and apply it (never backwards); returns the contract."""
    return run(QUERY, contract)


# --- terminate -------------------------------------------------------------------------------


def terminate_operation(remark: str) -> Operation:
    """The terminate operation with its ``contract_termination_remark`` (required, at most 256 characters)."""
    if not isinstance(remark, str) or not remark.strip() or len(remark) > 256:
        raise ValidationError({"contract_termination_remark": _("Give a termination remark of 1 to 256 characters.")})

    def prepare(contract: Contract) -> Call:
        if contract.status != Contract.Status.SIGNED:
            raise ContractStateError(
                _("Contract %(code)s is %(status)s; only a signed contract can be terminated.")
                % {"code": contract.out_contract_code, "status": contract.get_status_display()}
            )
        path = wechatpay.path(
            wechatpay.TERMINATE_PATH, plan_id=contract.plan_id, out_contract_code=contract.out_contract_code
        )
        return Call("POST", path, {"contract_termination_remark": remark})

    def apply(contract: Contract, call: Call, answer: Answer) -> None:
        check_answer(answer, contract)
        with transaction.atomic():
            locked = Contract.objects.select_for_update().get(pk=contract.pk)
            move = state.mark_terminated(locked, at=call.prepared_at, mode=wechatpay.MCH_API_TERMINATE, remark=remark)
            if move.fields:
                locked.save(update_fields=move.fields)
            if move.signal is not None:
                move.signal.send(sender=Contract, contract=locked, notification=None)
        contract.refresh_from_db()

    return Operation(prepare, apply)


def terminate(contract: Contract, remark: str) -> Contract:
    """End a signed contract at WeChat Pay (``contract_termination_remark`` = ``remark``); it becomes TERMINATED.

    WeChat Pay's TERMINATE notification that follows is then recorded as already applied.
    """
    return run(terminate_operation(remark), contract)

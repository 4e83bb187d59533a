"""Query and terminate a contract by its merchant contract code, and reconcile what WeChat Pay knows.

``query`` is the documented fallback when a notification never arrives: it maps ``contract_state``
onto the contract under the same ordering rule as notifications (``state.py``), so a late or stale
answer never moves a contract backwards.
"""

from __future__ import annotations

from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from ..client import Answer
from ..exceptions import ContractStateError, InvalidResponseError
from ..models import Contract
from . import state
from .operations import Call, Operation, check_answer, run

CONTRACT_PATH = "/v3/ecommerce/combine-papay/contracts/plan-id/{plan_id}/out-contract-code/{out_contract_code}"
MCH_API_TERMINATE = "MCH_API_TERMINATE"
CONTRACT_STATES = ("NOT_SIGNED", "SIGNED", "TERMINATED")


def contract_path(contract: Contract) -> str:
    return CONTRACT_PATH.format(plan_id=contract.plan_id, out_contract_code=quote(contract.out_contract_code, safe=""))


# --- query -----------------------------------------------------------------------------------


def _prepare_query(contract: Contract) -> Call:
    if contract.pk is None or not contract.out_contract_code:
        raise ContractStateError(_("Only a saved contract with a merchant contract code can be queried."))
    return Call("GET", contract_path(contract))


def _apply_query(contract: Contract, call: Call, answer: Answer) -> None:
    check_answer(answer, contract)
    data = answer.data
    contract_state = data.get("contract_state")
    if contract_state not in CONTRACT_STATES:
        raise InvalidResponseError(
            f"unknown contract_state {contract_state!r}", code="ANSWER_MISMATCH", status=answer.status,
            request_id=answer.request_id,
        )
    signed_at = _time(data.get("contract_signed_time"))
    info = data.get("contract_terminate_info") if isinstance(data.get("contract_terminate_info"), dict) else {}
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        moves = []
        if contract_state in ("SIGNED", "TERMINATED") and signed_at and locked.status != Contract.Status.TERMINATED:
            moves.append(state.mark_signed(
                locked, at=signed_at, openid=str(data.get("openid") or ""),
                expires_at=_time(data.get("contract_expired_time")), contract_id=str(data.get("contract_id") or ""),
                mchid=str(data.get("mchid") or ""),
            ))
        if contract_state == "TERMINATED":
            moves.append(state.mark_terminated(
                locked, at=_time(info.get("contract_terminated_time")) or call.prepared_at,
                mode=str(info.get("contract_termination_mode") or ""),
                remark=str(info.get("contract_termination_remark") or ""),
                openid=str(data.get("openid") or ""), contract_id=str(data.get("contract_id") or ""),
            ))
        if contract_state == "NOT_SIGNED" and locked.status == Contract.Status.PRESIGNED:
            if not locked.presign_session_is_live(call.prepared_at):
                locked.status = Contract.Status.EXPIRED
        locked.queried_at = call.prepared_at
        locked.last_error = ""
        locked.save(update_fields=["queried_at", "status", "last_error", "updated_at"])
        # One signal per state change; a contract first seen terminated went through signed too.
        for signal, _note in moves:
            if signal is not None:
                signal.send(sender=Contract, contract=locked, notification=None)
    contract.refresh_from_db()


QUERY = Operation("query", _prepare_query, _apply_query)


def query(contract: Contract) -> Contract:
    """Ask WeChat Pay for the contract's state and apply it (never backwards); returns the contract."""
    return run(QUERY, contract)


# --- terminate -------------------------------------------------------------------------------


def terminate_operation(remark: str) -> Operation:
    """The terminate operation with its ``contract_termination_remark`` (required, at most 256 characters)."""
    if not isinstance(remark, str) or not remark.strip() or len(remark) > 256:
        raise ValidationError(
            {"contract_termination_remark": _("Give a termination remark of 1 to 256 characters.")}
        )

    def prepare(contract: Contract) -> Call:
        if contract.status != Contract.Status.SIGNED:
            raise ContractStateError(
                _("Contract %(code)s is %(status)s; only a signed contract can be terminated.")
                % {"code": contract.out_contract_code, "status": contract.get_status_display()}
            )
        return Call("POST", contract_path(contract) + "/terminate", {"contract_termination_remark": remark})

    def apply(contract: Contract, call: Call, answer: Answer) -> None:
        check_answer(answer, contract)
        with transaction.atomic():
            locked = Contract.objects.select_for_update().get(pk=contract.pk)
            signal, _note = state.mark_terminated(
                locked, at=call.prepared_at, mode=MCH_API_TERMINATE, remark=remark
            )
            if signal is not None:
                signal.send(sender=Contract, contract=locked, notification=None)
        contract.refresh_from_db()

    return Operation("terminate", prepare, apply)


def terminate(contract: Contract, remark: str) -> Contract:
    """End a signed contract at WeChat Pay (``contract_termination_remark`` = ``remark``); it becomes TERMINATED.

    WeChat Pay's TERMINATE notification that follows is then recorded as already applied.
    """
    return run(terminate_operation(remark), contract)


def _time(value: object):
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


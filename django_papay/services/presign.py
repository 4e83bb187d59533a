"""Pre-sign: open a signing session (``pre_entrustweb_id``) for the user's App or mini-program.

Validated before anything is sent; WeChat Pay's errors are recorded on the contract and re-raised.
A session lasts 2 hours; an expired one can be replaced by pre-signing again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf
from ..client import Answer
from ..exceptions import ContractStateError
from ..models import PRESIGN_SESSION, Contract, new_out_contract_code
from .operations import FINAL_STATES, Call, Operation, check_answer, run

APP_PRESIGN_PATH = "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign"
MINI_PROGRAM_PRESIGN_PATH = "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign/mini-program"


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
            % {"code": contract.out_contract_code, "expires": timezone.localtime(contract.presign_expires_at)}
        )


def _prepare(channel: str):
    path = APP_PRESIGN_PATH if channel == Contract.Channel.APP else MINI_PROGRAM_PRESIGN_PATH

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
            locked.mchid = str(answer.data.get("mchid") or conf.mchid())
            locked.presigned_at = call.prepared_at
            locked.presign_channel = channel
            locked.status = Contract.Status.PRESIGNED
            locked.last_error = ""
            locked.save(update_fields=["pre_entrustweb_id", "mchid", "presigned_at", "presign_channel", "status",
                                       "last_error", "updated_at"])
        for name in ("pre_entrustweb_id", "mchid", "presigned_at", "presign_channel", "status", "last_error",
                     "updated_at"):
            setattr(contract, name, getattr(locked, name))

    return apply


PRESIGN = Operation("presign", _prepare(Contract.Channel.APP), _apply(Contract.Channel.APP), fails_contract=True)
PRESIGN_MINI_PROGRAM = Operation(
    "presign_mini_program", _prepare(Contract.Channel.MINI_PROGRAM), _apply(Contract.Channel.MINI_PROGRAM),
    fails_contract=True,
)


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


def expire_presigns(now: datetime | None = None) -> int:
    """Mark pre-signed contracts whose 2-hour session ran out as EXPIRED; returns how many."""
    now = now or timezone.now()
    return Contract.objects.filter(
        status=Contract.Status.PRESIGNED, presigned_at__lte=now - PRESIGN_SESSION
    ).update(status=Contract.Status.EXPIRED, updated_at=now)

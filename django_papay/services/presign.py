"""Pre-sign: open an APP signing session (pre_entrustweb_id) for a contract.

Validate before any request is sent, record WeChat Pay's errors where staff can read them, re-raise
the typed error.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf
from ..client import get_client
from ..exceptions import ContractStateError, InvalidResponseError, WeChatPayError
from ..models import Contract, new_out_contract_code

logger = logging.getLogger("django_papay.services")

PRESIGN_PATH = "/v3/ecommerce/combine-papay/contracts/pre-entrust-sign"

FINAL_STATES = (Contract.Status.SIGNED, Contract.Status.TERMINATED)


def presign_payload(contract: Contract) -> dict[str, Any]:
    """The APP pre-sign request body for ``contract``, validated against WeChat Pay's field rules."""
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
    return_app = conf.return_app()
    if return_app is not None:
        payload["return_app"] = return_app
    if contract.attach:
        payload["attach"] = contract.attach
    return payload


def check_can_presign(contract: Contract) -> None:
    """Raise ContractStateError unless a new pre-sign session makes sense for ``contract``."""
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


def presign(contract: Contract) -> Contract:
    """Open an APP signing session for ``contract`` and store its ``pre_entrustweb_id``.

    Raises ValidationError (nothing sent) when the contract's fields break WeChat Pay's rules,
    ContractStateError when it is signed, terminated or already has a live session, and
    WeChatPayError (after recording it in ``last_error``) when WeChat Pay says no.
    """
    check_can_presign(contract)
    if not contract.out_contract_code:
        contract.out_contract_code = new_out_contract_code()
    payload = presign_payload(contract)
    if contract.pk is None:
        contract.save()
    started_at = timezone.now()  # the session's 2 hours run from no later than this
    try:
        answer = get_client().post(PRESIGN_PATH, payload)
        _check_presign_answer(answer.data, payload, answer.request_id)
    except WeChatPayError as exc:
        record_failure(contract, exc)
        raise

    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        # A notification may have finished the contract while we waited; never step back from it.
        if locked.status in FINAL_STATES:
            raise ContractStateError(
                _("Contract %(code)s became %(status)s during the pre-sign; nothing was changed.")
                % {"code": locked.out_contract_code, "status": locked.get_status_display()}
            )
        locked.pre_entrustweb_id = answer.data["pre_entrustweb_id"]
        locked.mchid = str(answer.data.get("mchid") or conf.mchid())
        locked.presigned_at = started_at
        locked.status = Contract.Status.PRESIGNED
        locked.last_error = ""
        locked.save(update_fields=["pre_entrustweb_id", "mchid", "presigned_at", "status", "last_error",
                                   "updated_at"])
    _copy_fields(locked, contract)
    logger.info("pre-signed contract %s (Request-ID %s)", contract.out_contract_code, answer.request_id or "-")
    return contract


def _check_presign_answer(data: dict[str, Any], payload: dict[str, Any], request_id: str) -> None:
    """The answer must be for this contract, from our merchant, with a usable id."""
    pre_entrustweb_id = data.get("pre_entrustweb_id")
    problems = []
    if not isinstance(pre_entrustweb_id, str) or not 0 < len(pre_entrustweb_id) <= 128:
        problems.append("pre_entrustweb_id")
    if data.get("out_contract_code") != payload["out_contract_code"]:
        problems.append("out_contract_code")
    if data.get("plan_id") != payload["plan_id"] or isinstance(data.get("plan_id"), bool):
        problems.append("plan_id")
    if "mchid" in data and str(data["mchid"]) != conf.mchid():
        problems.append("mchid")
    if problems:
        raise InvalidResponseError(
            f"the pre-sign answer does not match this contract ({', '.join(problems)})",
            code="ANSWER_MISMATCH", status=200, request_id=request_id,
        )


def record_failure(contract: Contract, exc: WeChatPayError) -> None:
    """Store the error for staff; mark the contract FAILED only when retrying cannot help."""
    changes: dict[str, Any] = {"last_error": str(exc), "updated_at": timezone.now()}
    if not exc.retryable:
        changes["status"] = Contract.Status.FAILED
    # A conditional UPDATE: never overwrite a contract that a notification has signed meanwhile.
    Contract.objects.filter(pk=contract.pk).exclude(status__in=FINAL_STATES).update(**changes)
    contract.refresh_from_db(fields=["status", "last_error", "updated_at"])
    logger.warning("contract %s: %s", contract.out_contract_code, changes["last_error"])


def _copy_fields(source: Contract, target: Contract) -> None:
    for name in ("pre_entrustweb_id", "mchid", "presigned_at", "status", "last_error", "updated_at"):
        setattr(target, name, getattr(source, name))

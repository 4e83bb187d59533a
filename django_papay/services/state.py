"""The one place a contract's WeChat Pay state moves, whoever reports it (notification, query, terminate).

WeChat Pay's reports can arrive late, twice, or out of order, so every move follows the same rule:
an older event never overrides a newer one, and a terminated contract stays terminated. Callers hold
the contract row lock; each function saves and returns the signal to send (None: the status did not
change) and, when the report changed nothing, why.
"""

from __future__ import annotations

from datetime import datetime

from django.dispatch import Signal
from django.utils.translation import gettext as _

from ..models import Contract
from ..signals import contract_signed, contract_terminated

Move = tuple[Signal | None, str]

# What each move may change: saved alone, so a move never writes back columns it did not touch.
SIGNED_FIELDS = ("status", "signed_at", "openid", "contract_expired_at", "contract_id", "mchid", "last_error",
                 "updated_at")
TERMINATED_FIELDS = ("status", "terminated_at", "termination_mode", "termination_remark", "openid", "contract_id",
                     "mchid", "last_error", "updated_at")


def mark_signed(
    contract: Contract,
    *,
    at: datetime,
    openid: str,
    expires_at: datetime | None = None,
    contract_id: str = "",
    mchid: str = "",
) -> Move:
    if contract.status == Contract.Status.TERMINATED:
        return None, _("The contract was terminated at %(time)s; a signing report never revives it.") % {
            "time": contract.terminated_at
        }
    if contract.status == Contract.Status.SIGNED and contract.signed_at and at <= contract.signed_at:
        return None, _("The contract is already signed (at %(time)s).") % {"time": contract.signed_at}
    was_signed = contract.status == Contract.Status.SIGNED
    contract.status = Contract.Status.SIGNED
    contract.signed_at = at
    contract.openid = openid or contract.openid
    contract.contract_expired_at = expires_at or contract.contract_expired_at
    contract.contract_id = contract_id or contract.contract_id
    contract.mchid = mchid or contract.mchid
    contract.last_error = ""
    contract.save(update_fields=SIGNED_FIELDS)
    return (None if was_signed else contract_signed), ""


def mark_terminated(
    contract: Contract,
    *,
    at: datetime,
    mode: str,
    remark: str = "",
    openid: str = "",
    contract_id: str = "",
    mchid: str = "",
) -> Move:
    if contract.status == Contract.Status.TERMINATED:
        return None, _("The contract is already terminated (at %(time)s).") % {"time": contract.terminated_at}
    if contract.signed_at and at < contract.signed_at:
        return None, _("Older than the contract's signing at %(time)s.") % {"time": contract.signed_at}
    contract.status = Contract.Status.TERMINATED
    contract.terminated_at = at
    contract.termination_mode = mode
    contract.termination_remark = remark or contract.termination_remark
    contract.openid = contract.openid or openid
    contract.contract_id = contract_id or contract.contract_id
    contract.mchid = mchid or contract.mchid
    contract.last_error = ""
    contract.save(update_fields=TERMINATED_FIELDS)
    return contract_terminated, ""

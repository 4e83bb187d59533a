"""The contract family: ECOMMERCE_ENTRUST.SIGN and .TERMINATE, what they do to a ``Contract``.

The notify pipeline runs the sequence (lock, duplicate, check, move, outcome, signal); this module says what
is the contracts' own: the typed event, the row it is about (``out_contract_code``), a contract signed
through another channel, the checks against our record, and the move (``state.mark_signed`` /
``state.mark_terminated``, which write nothing: the store does).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .. import conf, notifications
from ..exceptions import InvalidNotification
from ..models import Contract, out_contract_code_validator
from ..notifications import ContractEvent, VerifiedNotification
from ..signals import contract_signed, contract_terminated
from ..wechatpay import SIGN_EVENT, TERMINATE_EVENT
from . import state


class Contracts:
    """The ``Family`` of contract notifications (see ``notify_family``)."""

    model = Contract
    subject = "contract"
    signals = {SIGN_EVENT: contract_signed, TERMINATE_EVENT: contract_terminated}
    after_commit = False  # a receiver that raises rolls the move back; WeChat Pay delivers again

    def event(self, notification: VerifiedNotification) -> ContractEvent:
        event = notifications.contract_event(notification)
        if event.mchid != conf.mchid():
            raise InvalidNotification(
                "mchid", _("The notification is for merchant %(mchid)s, not ours.") % {"mchid": event.mchid}
            )
        return event

    def key(self, event: ContractEvent) -> tuple[str, str]:
        return "out_contract_code", event.out_contract_code

    def create(self, event: ContractEvent) -> None:
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
        # get_or_create survives a concurrent delivery creating the same contract (unique code).
        Contract.objects.get_or_create(
            out_contract_code=event.out_contract_code,
            defaults={"plan_id": event.plan_id, "appid": event.appid, "mchid": event.mchid, "openid": event.openid},
        )

    def check(self, contract: Contract, event: ContractEvent) -> None:
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

    def move(self, contract: Contract, event: ContractEvent) -> state.Move:
        """The newest report wins (``state``); sets the contract's new values in memory and says which."""
        if event.event_type == SIGN_EVENT:
            return state.mark_signed(
                contract,
                at=event.operate_time,
                openid=event.openid,
                expires_at=event.contract_expired_time,
                contract_id=event.contract_id,
                mchid=event.mchid,
                attach=event.attach,
            )
        return state.mark_terminated(
            contract,
            at=event.operate_time,
            mode=event.contract_termination_mode,
            openid=event.openid,
            contract_id=event.contract_id,
            mchid=event.mchid,
            attach=event.attach,
        )


CONTRACTS = Contracts()

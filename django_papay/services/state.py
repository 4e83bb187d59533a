"""The one place a contract's, a deduction's, a refund's or a profit share's WeChat Pay state moves, whoever
reports it.

WeChat Pay's reports can arrive late, twice, or out of order, so every move follows the same rule:
an older event never overrides a newer one, and a terminated contract stays terminated. Callers hold
the contract row lock. A contract's move sets the new values on the instance and returns a ``Move``: the
fields to write, the signal to send (None: the status did not change) and, when the report changed
nothing, why. It writes nothing itself: the caller writes the fields its own way (``save(update_fields=…)``,
or the notify path's PostgreSQL store, which sends the UPDATE together with the delivery's row).
A deduction's move saves and returns the signal to send. A refund's move is a contract's kind (a ``Move``,
nothing written), since the notify pipeline writes it too; its signal is sent after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.dispatch import Signal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import wechatpay
from ..display import local_time
from ..models import Contract, Deduction, ProfitShare, Refund
from ..signals import (
    contract_signed,
    contract_terminated,
    deduction_failed,
    deduction_succeeded,
    refund_failed,
    refund_succeeded,
    share_failed,
    share_finished,
)
from ..stored_messages import Error, Message


class Move(NamedTuple):
    """What a contract's move did, in memory: the fields to write, the signal to send, why nothing moved."""

    fields: tuple[str, ...]  # () when nothing is to be written
    signal: Signal | None
    note: str = ""  # "" when the report moved the contract


# What each move may change: written alone, so a move never writes back columns it did not touch.
SIGNED_FIELDS = (
    "status",
    "signed_at",
    "openid",
    "contract_expired_at",
    "contract_id",
    "mchid",
    "sign_attach",
    "last_error",
    "last_error_message",
    "updated_at",
)
TERMINATED_FIELDS = (
    "status",
    "terminated_at",
    "termination_mode",
    "termination_remark",
    "openid",
    "contract_id",
    "mchid",
    "terminate_attach",
    "last_error",
    "last_error_message",
    "updated_at",
)


def mark_signed(
    contract: Contract,
    *,
    at: datetime,
    openid: str,
    expires_at: datetime | None = None,
    contract_id: str = "",
    mchid: str = "",
    attach: str = "",
) -> Move:
    if contract.status == Contract.Status.TERMINATED:
        note = _("The contract was terminated at %(time)s; a signing report never revives it.") % {
            "time": local_time(contract.terminated_at)
        }
        return Move((), None, note)
    if contract.status == Contract.Status.SIGNED and contract.signed_at and at <= contract.signed_at:
        # No move; but a report may carry what an earlier one lacked (a SIGN without contract_id, then a query).
        blanks = {
            name: value
            for name, value in (
                ("contract_id", contract_id),
                ("openid", openid),
                ("mchid", mchid),
                ("sign_attach", attach),
            )
            if value and not getattr(contract, name)
        }
        for name, value in blanks.items():
            setattr(contract, name, value)
        note = _("The contract is already signed (at %(time)s).") % {"time": local_time(contract.signed_at)}
        return Move((*blanks, "updated_at") if blanks else (), None, note)
    was_signed = contract.status == Contract.Status.SIGNED
    contract.status = Contract.Status.SIGNED
    contract.signed_at = at
    contract.openid = openid or contract.openid
    contract.contract_expired_at = expires_at or contract.contract_expired_at
    contract.contract_id = contract_id or contract.contract_id
    contract.mchid = mchid or contract.mchid
    contract.sign_attach = attach or contract.sign_attach  # a query carries none
    contract.set_error("")
    return Move(SIGNED_FIELDS, None if was_signed else contract_signed)


def mark_terminated(
    contract: Contract,
    *,
    at: datetime,
    mode: str,
    remark: str = "",
    openid: str = "",
    contract_id: str = "",
    mchid: str = "",
    attach: str = "",
) -> Move:
    if contract.status == Contract.Status.TERMINATED:
        note = _("The contract is already terminated (at %(time)s).") % {"time": local_time(contract.terminated_at)}
        return Move((), None, note)
    if contract.signed_at and at < contract.signed_at:
        note = _("Older than the contract's signing at %(time)s.") % {"time": local_time(contract.signed_at)}
        return Move((), None, note)
    contract.status = Contract.Status.TERMINATED
    contract.terminated_at = at
    contract.termination_mode = mode
    contract.termination_remark = remark or contract.termination_remark
    contract.openid = contract.openid or openid
    contract.contract_id = contract_id or contract.contract_id
    contract.mchid = mchid or contract.mchid
    contract.terminate_attach = attach or contract.terminate_attach
    contract.set_error("")
    return Move(TERMINATED_FIELDS, contract_terminated)


# --- deductions ------------------------------------------------------------------------------------

# trade_state values that mean the sub-order was paid (REFUND: paid, then refunded).
PAID_TRADE_STATES = frozenset({wechatpay.TRADE_SUCCESS, "REFUND"})
REVOKED = "REVOKED"  # what a reverse (撤销) leaves
OPEN_DEDUCTION_STATES = (Deduction.Status.CREATED, Deduction.Status.PROCESSING)
NOT_CHARGED_STATUSES = (Deduction.Status.FAILED, Deduction.Status.REVERSED)


def charge_outcome(trade_states: list[str]) -> str | None:
    """What the sub-orders' trade states make of the whole charge; None while it is not final.

    Not final: any sub-order still NOTPAY/USERPAYING/ACCEPT, or in a state we do not know (unknown is not
    failed), or — never documented for 合单 [I] — some paid and some not, which is left for staff to decide.
    All REVOKED is REVERSED, whoever sent the reverse (a worker that died before recording it, too).
    """
    if not trade_states or any(s in wechatpay.TRADE_NOT_FINAL or s not in wechatpay.TRADE_STATES for s in trade_states):
        return None
    paid = [state in PAID_TRADE_STATES for state in trade_states]
    if all(paid):
        return Deduction.Status.SUCCEEDED
    if any(paid):
        return None
    return Deduction.Status.REVERSED if all(s == REVOKED for s in trade_states) else Deduction.Status.FAILED


def finish_deduction(deduction: Deduction, status: str, *, at: datetime, error: Error = "") -> Signal | None:
    """Make a locked, open deduction final (``status``); the signal to send, None when it was final already."""
    if deduction.status not in OPEN_DEDUCTION_STATES:
        return None
    deduction.status = status
    deduction.settled_at = at
    deduction.save(update_fields=["status", "settled_at", *deduction.set_error(error), "updated_at"])
    return deduction_succeeded if status == Deduction.Status.SUCCEEDED else deduction_failed


def correct_deduction(deduction: Deduction, outcome: str, *, at: datetime) -> Signal | None:
    """A verified answer for a locked, final deduction: the one move out of a final status.

    Money taken is never left recorded as not taken: a FAILED or REVERSED deduction whose sub-orders WeChat
    Pay now reports paid becomes SUCCEEDED, remembering what it was (``corrected_from``), and its succeeded
    signal is sent (with ``corrected_from``). Any other disagreement moves nothing and is written down for
    staff. Returns the signal to send, or None.
    """
    if outcome == deduction.status or deduction.status in OPEN_DEDUCTION_STATES:
        return None
    if outcome == Deduction.Status.SUCCEEDED and deduction.status in NOT_CHARGED_STATUSES:
        previous = deduction.status
        deduction.status, deduction.corrected_from, deduction.settled_at = outcome, previous, at
        corrected = Message(
            gettext_noop(
                "WeChat Pay charged the user after this deduction was recorded %(previous)s (%(error)s). It is "
                "succeeded now; if the user was asked to pay another way meanwhile, refund one of the two."
            ),
            previous=Deduction.Status(previous).label,
            error=deduction.stored_error() or None,
        )
        fields = deduction.set_error(corrected)
        deduction.save(update_fields=["status", "corrected_from", "settled_at", *fields, "updated_at"])
        return deduction_succeeded
    if (outcome == Deduction.Status.SUCCEEDED) != (deduction.status == Deduction.Status.SUCCEEDED):
        disagreement = Message(
            gettext_noop("WeChat Pay now reports this %(status)s deduction as %(outcome)s; check it."),
            status=Deduction.Status(deduction.status).label,
            outcome=Deduction.Status(outcome).label,
        )
        deduction.save(update_fields=[*deduction.set_error(disagreement), "updated_at"])
    return None


# --- profit shares -----------------------------------------------------------------------------------

OPEN_SHARE_STATES = (ProfitShare.Status.CREATED, ProfitShare.Status.PROCESSING)


def finish_share(share: ProfitShare, status: str, *, at: datetime, error: Error = "") -> Signal | None:
    """Make a locked, open share FINISHED or FAILED; the signal to send, None when it was final already.

    A final share never moves again: a late PROCESSING answer after FINISHED changes nothing.
    """
    if share.status not in OPEN_SHARE_STATES:
        return None
    share.status = status
    share.settled_at = at
    share.save(update_fields=["status", "settled_at", *share.set_error(error), "updated_at"])
    return share_finished if status == ProfitShare.Status.FINISHED else share_failed


# --- refunds ---------------------------------------------------------------------------------------

# WeChat Pay's refund status → ours; PROCESSING and unknown values are no outcome (stored as they come).
REFUND_OUTCOMES = {
    wechatpay.REFUND_SUCCESS: Refund.Status.SUCCEEDED,
    wechatpay.REFUND_ABNORMAL: Refund.Status.ABNORMAL,
    wechatpay.REFUND_CLOSED: Refund.Status.CLOSED,
    wechatpay.REFUND_CLOSE: Refund.Status.CLOSED,
}
# Final: nothing moves them but a signed report of money refunded after all (FAILED → SUCCEEDED).
FINAL_REFUND_STATUSES = (Refund.Status.SUCCEEDED, Refund.Status.CLOSED, Refund.Status.FAILED)
REFUND_FIELDS = (
    "status",
    "refund_status",
    "refund_id",
    "channel",
    "user_received_account",
    "success_time",
    "abnormal_at",
    "error_code",
    "last_error",
    "last_error_message",
    "updated_at",
)


def move_refund(
    refund: Refund,
    refund_status: str,
    *,
    at: datetime,
    refund_id: str = "",
    channel: str = "",
    user_received_account: str = "",
    success_time: datetime | None = None,
) -> Move:
    """What WeChat Pay's report (a query, a REFUND.* notification) does to a locked refund, in memory.

    Reports come late, twice and in any order: a final refund stays final, except that money refunded is
    never left recorded as not refunded (a FAILED one reported SUCCESS becomes SUCCEEDED). ``refund_succeeded``
    goes out once (SUCCEEDED is final); ``refund_failed`` once, the first time the refund is ABNORMAL, CLOSED
    or FAILED (``abnormal_at`` remembers an ABNORMAL one, so a CLOSED after it, or ABNORMAL again after a
    retry, sends nothing more).
    """
    refund.refund_id = refund.refund_id or refund_id
    refund.channel = channel or refund.channel
    refund.user_received_account = user_received_account or refund.user_received_account
    outcome = REFUND_OUTCOMES.get(refund_status)
    if refund.status in FINAL_REFUND_STATUSES:
        if outcome == Refund.Status.SUCCEEDED and refund.status == Refund.Status.FAILED:
            refund.status, refund.refund_status = Refund.Status.SUCCEEDED, refund_status
            refund.success_time = success_time or at
            refund.set_error(
                Message(
                    gettext_noop(
                        "WeChat Pay refunded this refund after it was recorded failed (%(error)s); it is succeeded now."
                    ),
                    error=refund.stored_error() or None,
                )
            )
            return Move(REFUND_FIELDS, refund_succeeded)
        note = _("The refund is %(status)s already; WeChat Pay's report of %(reported)s changes nothing.") % {
            "status": refund.get_status_display(),
            "reported": refund_status or "-",
        }
        return Move(("refund_id", "channel", "user_received_account", "updated_at"), None, note)
    refund.refund_status = refund_status
    if outcome is None or outcome == refund.status:
        note = _("Not final yet: WeChat Pay reports %(reported)s.") % {"reported": refund_status or "-"}
        return Move(REFUND_FIELDS, None, note)
    refund.status, refund.error_code = outcome, ""
    refund.set_error("")
    if outcome == Refund.Status.SUCCEEDED:
        refund.success_time = success_time or at
        return Move(REFUND_FIELDS, refund_succeeded)
    announced = refund.abnormal_at is not None  # refund_failed went out when it first became ABNORMAL
    if outcome == Refund.Status.ABNORMAL:
        refund.abnormal_at = refund.abnormal_at or at
        refund.set_error(
            Message(
                gettext_noop(
                    "WeChat Pay could not pay it into the user's account (ABNORMAL): retry it to the sub-merchant's "
                    "bank account, or settle it with the user."
                )
            )
        )
    return Move(REFUND_FIELDS, None if announced else refund_failed)


def fail_refund(refund: Refund, *, error: Error, code: str) -> Move:
    """WeChat Pay signed a refusal of a locked, open refund: FAILED, nothing refunded; in memory."""
    if refund.status not in (Refund.Status.CREATED, Refund.Status.PROCESSING):
        return Move((), None, _("The refund is %(status)s already.") % {"status": refund.get_status_display()})
    refund.status, refund.error_code = Refund.Status.FAILED, code
    refund.set_error(error)
    return Move(REFUND_FIELDS, refund_failed if refund.abnormal_at is None else None)

"""The refund family: REFUND.SUCCESS, .ABNORMAL and .CLOSED, what they do to a ``Refund``.

The notify pipeline runs the sequence (lock, duplicate, check, move, outcome) and, for this family, sends the
signal after the commit (``after_commit``), as every refund signal goes out. This module says what is the
refunds' own: the typed event, the row it is about (``out_refund_no``), that a refund we never asked for is
rejected (stored, nothing created), the checks against our record (merchant, sub-merchant, number, amount,
order, transaction, refund id) and the move (``state.move_refund``, which writes nothing: the store does).
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf, notifications, wechatpay
from ..exceptions import InvalidNotification
from ..models import Refund
from ..notifications import RefundEvent, VerifiedNotification
from ..signals import refund_failed, refund_succeeded
from . import state

# The status each event type reports (what the pipeline goes by; the resource's refund_status is stored).
STATUS_BY_EVENT = {
    wechatpay.REFUND_SUCCESS_EVENT: wechatpay.REFUND_SUCCESS,
    wechatpay.REFUND_ABNORMAL_EVENT: wechatpay.REFUND_ABNORMAL,
    wechatpay.REFUND_CLOSED_EVENT: wechatpay.REFUND_CLOSED,
}


class Refunds:
    """The ``Family`` of refund notifications (see ``notify_family``)."""

    model = Refund
    subject = "refund"
    signals = {
        wechatpay.REFUND_SUCCESS_EVENT: refund_succeeded,
        wechatpay.REFUND_ABNORMAL_EVENT: refund_failed,
        wechatpay.REFUND_CLOSED_EVENT: refund_failed,
    }
    after_commit = True  # money has moved: a receiver that raises must not undo the record of it

    def event(self, notification: VerifiedNotification) -> RefundEvent:
        event = notifications.refund_event(notification)
        if event.sp_mchid != conf.mchid():
            raise InvalidNotification(
                "mchid", _("The notification is for merchant %(mchid)s, not ours.") % {"mchid": event.sp_mchid}
            )
        return event

    def key(self, event: RefundEvent) -> tuple[str, str]:
        return "out_refund_no", event.out_refund_no

    def create(self, event: RefundEvent) -> None:
        """A refund we never asked for is not ours to record: rejected (the delivery is stored), nothing created."""
        raise InvalidNotification(
            "unknown_refund",
            _("out_refund_no %(number)s is no refund of ours.") % {"number": event.out_refund_no},
        )

    def check(self, refund: Refund, event: RefundEvent) -> None:
        """A leaked key must not forge refunds: the event must match our own record."""
        sub_order = refund.sub_order
        expected = {
            "sub_mchid": (event.sub_mchid, sub_order.sub_mchid),
            "amount.refund": (event.amount_refund, refund.amount),
            "amount.total": (event.amount_total, sub_order.amount if event.amount_total is not None else None),
            "out_trade_no": (event.out_trade_no, sub_order.out_trade_no if event.out_trade_no else ""),
            "transaction_id": (
                event.transaction_id,
                sub_order.transaction_id if event.transaction_id and sub_order.transaction_id else event.transaction_id,
            ),
            "refund_id": (event.refund_id, refund.refund_id or event.refund_id),
        }
        wrong = [name for name, (got, want) in expected.items() if got != want]
        if wrong:
            raise InvalidNotification(
                wrong[0].split(".")[0],
                _("%(fields)s of the notification do not match refund %(number)s.")
                % {"fields": ", ".join(wrong), "number": refund.out_refund_no},
            )

    def move(self, refund: Refund, event: RefundEvent) -> state.Move:
        """The refund's status from the event type (``state.move_refund``): final ones stay final."""
        return state.move_refund(
            refund,
            STATUS_BY_EVENT[event.event_type],
            at=timezone.now(),
            refund_id=event.refund_id,
            user_received_account=event.user_received_account,
            success_time=event.success_time,
        )


REFUNDS = Refunds()

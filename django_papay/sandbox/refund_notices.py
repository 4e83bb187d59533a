"""REFUND.SUCCESS, .ABNORMAL and .CLOSED: built from the refund book, sealed and signed, delivered to the
refund's ``notify_url`` as WeChat Pay's notifier does (``outgoing`` builds, ``delivery`` posts).

``RefundNotices`` works on a ``SandboxState`` and holds nothing of its own: make one whenever needed. Keyword
overrides replace any resource field (None removes one), so tests can build the reports a receiver must
refuse: another merchant's, another amount, a refund never asked for.
"""

from __future__ import annotations

from typing import Any

from django_papay import wechatpay

from . import outgoing
from .delivery import Courier
from .outgoing import OutgoingNotification
from .records import Delivery
from .state import SandboxState

EVENT_BY_STATUS = {
    wechatpay.REFUND_SUCCESS: wechatpay.REFUND_SUCCESS_EVENT,
    wechatpay.REFUND_ABNORMAL: wechatpay.REFUND_ABNORMAL_EVENT,
    wechatpay.REFUND_CLOSED: wechatpay.REFUND_CLOSED_EVENT,
}
ORIGINAL_TYPE = "refund"
NOTIFY_AFTER = 0.2  # seconds after the answer that WeChat Pay's REFUND.* is sent


class RefundNotices:
    """What WeChat Pay's notifier does about the refunds in ``state``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._courier = Courier(state.deliveries)

    def refund_notification(
        self, out_refund_no: str, /, *, event_type: str | None = None, url: str | None = None, **overrides: Any
    ) -> OutgoingNotification:
        """REFUND.<status> for the refund as the book has it (nothing is sent); ``url`` defaults to the refund's
        ``notify_url``. A refund never taken needs ``event_type``, ``url`` and its fields as overrides."""
        refund = self.state.refunds.get(out_refund_no) or {}
        status = refund.get("status", "")
        event_type = event_type or EVENT_BY_STATUS.get(status)
        if event_type is None:
            raise ValueError(f"refund {out_refund_no!r} is {status or 'unknown'}: pass event_type=")
        amount = refund.get("amount", {})
        resource: dict[str, Any] = {
            "sp_mchid": self.state.mchid,
            "sub_mchid": refund.get("sub_mchid"),
            "transaction_id": refund.get("transaction_id"),
            "out_trade_no": refund.get("out_trade_no"),
            "refund_id": refund.get("refund_id"),
            "out_refund_no": out_refund_no,
            "refund_status": event_type.partition(".")[2],
            "success_time": refund.get("success_time") if event_type == wechatpay.REFUND_SUCCESS_EVENT else None,
            "user_received_account": refund.get("user_received_account"),
            "amount": {
                "total": amount.get("total"),
                "refund": amount.get("refund"),
                "payer_total": amount.get("payer_total"),
                "payer_refund": amount.get("payer_refund"),
            },
            "refund_account": refund.get("refund_account"),
        }
        resource.update(overrides)
        resource = {name: value for name, value in resource.items() if value is not None}
        signing_key, signing_serial = self.state.signer()
        return outgoing.build(
            event_type,
            resource,
            url=self.state.rewrite(url if url is not None else refund.get("notify_url", "")),
            apiv3_key=self.state.apiv3_key,
            private_key=signing_key,
            serial=signing_serial,
            associated_data=wechatpay.REFUND_ASSOCIATED_DATA,
            original_type=ORIGINAL_TYPE,
        )

    def notify_refund(
        self, out_refund_no: str, *, repeat: int = 1, delay: float = 0.0, wait: bool = True
    ) -> list[Delivery]:
        """Deliver the refund's REFUND.<status> to its ``notify_url`` (nothing when it has none)."""
        notification = self.refund_notification(out_refund_no)
        if not notification.url:
            return []
        return self._courier.deliver(notification, repeat=repeat, delay=delay, wait=wait)

    def finish_refund(
        self, out_refund_no: str, status: str = wechatpay.REFUND_SUCCESS, *, notify: bool = True, wait: bool = True
    ) -> list[Delivery]:
        """WeChat Pay ends a refund in ``status`` later (a success that arrives later): the query says so, and
        its REFUND.* is delivered unless ``notify`` is False (a notification lost)."""
        self.state.refunds.finish(out_refund_no, status)
        return self.notify_refund(out_refund_no, wait=wait) if notify else []

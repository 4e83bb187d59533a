"""The store of what the sandbox's WeChat Pay knows about refunds (平台收付通 退款): every refund, by number.

Refunds by ``out_refund_no``, as the query answers them (plus the ``notify_url`` their REFUND.* go to).
``posts`` counts every apply the endpoint processed per number, taken or refused (one a queued fault answered
instead is not counted: ``Sandbox.requests`` has it), so a test can prove a number was sent again and refunded
once. The switches say what the next refunds do:

- ``outcome``: ``SUCCESS`` (the default: refunded at once, REFUND.SUCCESS follows the answer), ``PROCESSING``
  (a success that arrives later: ``finish`` ends it), ``ABNORMAL`` (the user's card cannot take it), ``CLOSED``;
- ``not_enough``: the sub-merchant's balance is short, so an apply not advanced by the platform (垫付) is
  refused with NOT_ENOUGH and nothing is taken;
- ``accepted_at``: when the next refunds are accepted (and, succeeding at once, refunded); None: now. The day's
  bill places a refund by its acceptance time.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django_papay import wechatpay

REFUND_ID_PREFIX = "5030"  # WeChat Pay's refund ids are long digit strings
CHANNEL = "ORIGINAL"
USER_RECEIVED_ACCOUNT = "支付用户零钱"


CLOSED = (wechatpay.REFUND_CLOSED, wechatpay.REFUND_CLOSE)  # what gives its amount back


class Refused(Exception):
    """A refund the book will not take; ``reason`` says why (``used``, ``too_many``, ``over``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefundBook:
    """Refunds by ``out_refund_no``; thread-safe. ``on_change`` (set by the state) persists changes."""

    def __init__(self) -> None:
        self.on_change: Callable[[], None] = lambda: None
        self.outcome = wechatpay.REFUND_SUCCESS
        self.not_enough = False
        self.accepted_at: datetime | None = None
        self.posts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._refunds: dict[str, dict[str, Any]] = {}

    def get(self, out_refund_no: str) -> dict[str, Any] | None:
        """The refund as the query answers it (a copy, ``notify_url`` included), or None."""
        with self._lock:
            found = self._refunds.get(out_refund_no)
            return None if found is None else copy.deepcopy(found)

    def by_id(self, refund_id: str) -> dict[str, Any] | None:
        with self._lock:
            for found in self._refunds.values():
                if found["refund_id"] == refund_id:
                    return copy.deepcopy(found)
        return None

    def counted(self, out_refund_no: object) -> None:
        if isinstance(out_refund_no, str):
            with self._lock:
                self.posts[out_refund_no] += 1
            self.on_change()

    def take(self, data: dict[str, Any], sub_order: dict[str, Any], notify_url: str) -> tuple[dict[str, Any], bool]:
        """Take a checked refund of ``sub_order`` in the switched ``outcome``, all under the book's lock: the
        stored refund, and True when it is new. A number taken before gives the refund taken then (False).

        Raises ``Refused`` naming why not: ``used`` (the number is another refund's), ``too_many`` (a 51st),
        ``over`` (more than is left of the order).
        """
        number = data["out_refund_no"]
        with self._lock:
            earlier = self._refunds.get(number)
            if earlier is not None:
                if (
                    earlier["out_trade_no"] != sub_order["out_trade_no"]
                    or earlier["amount"]["refund"] != data["amount"]["refund"]
                ):
                    raise Refused("used")
                return copy.deepcopy(earlier), False
            of_order = [r for r in self._refunds.values() if r["out_trade_no"] == sub_order["out_trade_no"]]
            if len(of_order) >= wechatpay.MAX_REFUNDS:
                raise Refused("too_many")
            held = sum(r["amount"]["refund"] for r in of_order if r["status"] not in CLOSED)
            if held + data["amount"]["refund"] > data["amount"]["total"]:
                raise Refused("over")
            refund = _new_refund(data, sub_order, notify_url, self.accepted_at)
            _set_status(refund, self.outcome, self.accepted_at)
            self._refunds[number] = refund
            answer = copy.deepcopy(refund)
        self.on_change()
        return answer, True

    def finish(self, out_refund_no: str, status: str = wechatpay.REFUND_SUCCESS) -> dict[str, Any]:
        """WeChat Pay ends a refund in ``status`` in the background (a success that arrives later, or a retried
        ABNORMAL one); the refund as it now is. KeyError for a number never taken."""
        with self._lock:
            refund = self._refunds[out_refund_no]
            _set_status(refund, status)
            answer = copy.deepcopy(refund)
        self.on_change()
        return answer

    def clear(self) -> None:
        with self._lock:
            self._refunds.clear()
            self.posts.clear()
        self.outcome = wechatpay.REFUND_SUCCESS
        self.not_enough = False
        self.accepted_at = None
        self.on_change()

    # --- persistence ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {"refunds": copy.deepcopy(self._refunds), "posts": dict(self.posts)}

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._refunds = copy.deepcopy(data.get("refunds", {}))
            self.posts = Counter(data.get("posts", {}))


def _new_refund(
    data: dict[str, Any], sub_order: dict[str, Any], notify_url: str, accepted_at: datetime | None = None
) -> dict[str, Any]:
    advance = data.get("refund_account") == wechatpay.REFUND_SOURCE_PARTNER_ADVANCE
    return {
        "refund_id": REFUND_ID_PREFIX + wechatpay.nonce(28, "0123456789"),
        "out_refund_no": data["out_refund_no"],
        "transaction_id": sub_order["transaction_id"],
        "out_trade_no": sub_order["out_trade_no"],
        "sub_mchid": sub_order["sub_mchid"],
        "channel": CHANNEL,
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "create_time": wechatpay.format_rfc3339(accepted_at),
        "status": wechatpay.REFUND_PROCESSING,
        "amount": {
            "refund": data["amount"]["refund"],
            "total": data["amount"]["total"],
            "payer_refund": data["amount"]["refund"],
            "payer_total": data["amount"]["total"],
            "discount_refund": 0,
            "currency": wechatpay.CURRENCY,
            **({"advance": data["amount"]["refund"]} if advance else {}),
        },
        "refund_account": wechatpay.REFUND_SOURCE_PARTNER_ADVANCE if advance else wechatpay.REFUND_SOURCE_SUB_MERCHANT,
        "notify_url": notify_url,
    }


def _set_status(refund: dict[str, Any], status: str, at: datetime | None = None) -> None:
    refund["status"] = status
    if status == wechatpay.REFUND_SUCCESS:
        refund["success_time"] = wechatpay.format_rfc3339(at)

"""The store of what the sandbox's WeChat Pay knows about deductions (合单代扣 免密支付): every charge.

Charges by ``combine_out_trade_no``, as the query answers them: each sub-order's trade state and
transaction id. ``posts`` counts every deduct POST per number, accepted or not, so a test can prove that
nothing was ever sent twice. ``trade_state`` is what the next charges end in: SUCCESS by default; ACCEPT
leaves them waiting until ``settle_later``; PAYERROR refuses them. ``paid_at`` is when the next charges are
paid (None: now), so a test can put a charge at 23:59:59 Beijing time.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django_papay import wechatpay

TRANSACTION_ID_PREFIX = "4200"  # WeChat Pay's transaction ids are 28 digits


class DeductionBook:
    """Charges by ``combine_out_trade_no``; thread-safe. ``on_change`` (set by the state) persists changes."""

    def __init__(self) -> None:
        self.on_change: Callable[[], None] = lambda: None
        self.trade_state = wechatpay.TRADE_SUCCESS
        self.paid_at: datetime | None = None
        self.posts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._charges: dict[str, dict[str, Any]] = {}

    def get(self, combine_out_trade_no: str) -> dict[str, Any] | None:
        """The charge as the query answers it (a copy), or None."""
        with self._lock:
            charge = self._charges.get(combine_out_trade_no)
            return None if charge is None else copy.deepcopy(charge)

    def paid(self, transaction_id: str) -> bool:
        """Whether the sub-order WeChat Pay numbered ``transaction_id`` is paid (SUCCESS)."""
        with self._lock:
            return any(
                sub["transaction_id"] == transaction_id and sub["trade_state"] == wechatpay.TRADE_SUCCESS
                for charge in self._charges.values()
                for sub in charge["sub_orders"]
            )

    def charges(self) -> list[dict[str, Any]]:
        """Every charge as the query answers it (copies), oldest first: what the day's bill is made from."""
        with self._lock:
            return copy.deepcopy(list(self._charges.values()))

    def sub_order(self, *, out_trade_no: str | None = None, transaction_id: str | None = None) -> dict[str, Any] | None:
        """The sub-order (a copy) with this ``out_trade_no`` or ``transaction_id``, or None (a refund's order)."""
        with self._lock:
            for charge in self._charges.values():
                for sub in charge["sub_orders"]:
                    if (out_trade_no and sub["out_trade_no"] == out_trade_no) or (
                        transaction_id and sub["transaction_id"] == transaction_id
                    ):
                        return copy.deepcopy(sub)
        return None

    def counted(self, combine_out_trade_no: object) -> None:
        if isinstance(combine_out_trade_no, str):
            with self._lock:
                self.posts[combine_out_trade_no] += 1
            self.on_change()

    def charge(self, data: dict[str, Any], *, openid: str) -> dict[str, Any] | None:
        """Take a checked charge: each sub-order gets a transaction id and the switched ``trade_state``.

        None, taking nothing, when its number or one of its sub-orders' numbers was received before.
        """
        number = data["combine_out_trade_no"]
        with self._lock:
            used = {sub["out_trade_no"] for charge in self._charges.values() for sub in charge["sub_orders"]}
            if number in self._charges or used & {sub["out_trade_no"] for sub in data["sub_orders"]}:
                return None
            charge = {
                "combine_appid": data["combine_appid"],
                "combine_mchid": data["combine_mchid"],
                "combine_out_trade_no": number,
                "sub_orders": [_sub_order(sub, self.trade_state, self.paid_at) for sub in data["sub_orders"]],
                "combine_payer_info": {"openid": openid},
            }
            self._charges[number] = charge
            answer = copy.deepcopy(charge)
        self.on_change()
        return answer

    def settle_later(self, combine_out_trade_no: str, trade_state: str = wechatpay.TRADE_SUCCESS) -> None:
        """A waiting (ACCEPT) charge ends in ``trade_state``, as WeChat Pay finishes it in the background."""
        self._set_states(combine_out_trade_no, trade_state)

    def reverse(self, combine_out_trade_no: str) -> None:
        """撤销: every sub-order is revoked (the user is not charged, or is paid back)."""
        self._set_states(combine_out_trade_no, "REVOKED")

    def clear(self) -> None:
        with self._lock:
            self._charges.clear()
            self.posts.clear()
        self.trade_state = wechatpay.TRADE_SUCCESS
        self.paid_at = None
        self.on_change()

    # --- persistence ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {"charges": copy.deepcopy(self._charges), "posts": dict(self.posts)}

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._charges = copy.deepcopy(data.get("charges", {}))
            self.posts = Counter(data.get("posts", {}))

    def _set_states(self, combine_out_trade_no: str, trade_state: str) -> None:
        with self._lock:
            for sub in self._charges[combine_out_trade_no]["sub_orders"]:
                _set_state(sub, trade_state, self.paid_at)
        self.on_change()


def _sub_order(sub: dict[str, Any], trade_state: str, paid_at: datetime | None) -> dict[str, Any]:
    answer = {
        "mchid": sub["mchid"],
        "sub_mchid": sub["sub_mchid"],
        "out_trade_no": sub["out_trade_no"],
        "transaction_id": TRANSACTION_ID_PREFIX + wechatpay.nonce(24, "0123456789"),
        "trade_type": wechatpay.TRADE_TYPE,
        "amount": {"total_amount": sub["amount"]["total_amount"], "currency": wechatpay.CURRENCY},
    }
    answer.update({name: sub[name] for name in ("sub_appid", "attach") if name in sub})
    _set_state(answer, trade_state, paid_at)
    return answer


def _set_state(sub: dict[str, Any], trade_state: str, paid_at: datetime | None = None) -> None:
    sub["trade_state"] = trade_state
    if trade_state == wechatpay.TRADE_SUCCESS:
        sub.update(bank_type="OTHERS", success_time=wechatpay.format_rfc3339(paid_at))
        sub["amount"].update(payer_amount=sub["amount"]["total_amount"], payer_currency=wechatpay.CURRENCY)

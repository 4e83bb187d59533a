"""The store of what the sandbox's WeChat Pay knows after a charge: frozen funds, shares, returns, subsidies.

Every paid sub-order is registered here by its ``transaction_id`` when it is charged. One charged with
``profit_sharing`` is **frozen** in its sub-merchant's account until a share pays receivers out of it and a
finish (or a share with ``finish``) unfreezes the rest; one without the flag is available at once. Balances
are per merchant id, to the fen: ``balance(mchid)`` is ``{"frozen", "available"}``. The platform (the
merchant itself) receives its shares there, returns them (分账回退) and pays subsidies (补差) from there.

``asynchronous`` (True by default, as WeChat Pay documents): a share is answered PROCESSING with its receivers
PENDING, and FINISHED on the next query. ``posts`` counts every share POST per ``out_order_no``.

A refund comes out of the sub-order's money the sub-merchant still holds (``holds``): out of the frozen funds
before sharing, and after a share only once the shared part is back (分账回退) when the rest does not cover it;
a refund the platform advances (垫付) comes out of the platform's account (``refunded``).
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from django_papay import wechatpay


class SharingBook:
    """Frozen and available funds, shares, returns and subsidies; thread-safe (one lock, held by handlers)."""

    def __init__(self, paid: Callable[[str], bool]) -> None:
        self.on_change: Callable[[], None] = lambda: None
        self.paid = paid  # transaction_id → whether its sub-order is paid (the deduction book knows)
        self.asynchronous = True
        self.posts: Counter[str] = Counter()
        self.lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}  # by transaction_id
        self.shares: dict[str, dict[str, Any]] = {}  # by out_order_no (shares and finishes)
        self.returns: dict[str, dict[str, Any]] = {}  # by out_return_no
        self.subsidies: dict[str, dict[str, Any]] = {}  # by out_subsidy_no
        self.accounts: Counter[str] = Counter()  # available funds moved by sharing, by merchant id

    def register(self, sub: dict[str, Any]) -> None:
        """A charged sub-order (the deduct request's item, with its transaction_id): frozen if it shares."""
        settle_info = sub.get("settle_info") or {}
        with self.lock:
            self.orders[sub["transaction_id"]] = {
                "sub_mchid": sub["sub_mchid"],
                "amount": sub["amount"]["total_amount"],
                "profit_sharing": bool(settle_info.get("profit_sharing")),
                "subsidy_amount": settle_info.get("subsidy_amount") or 0,
                "subsidy_paid": 0,
                "frozen": sub["amount"]["total_amount"],
                "shared": 0,
                "refunded": 0,
                "finished": False,
            }
        self.on_change()

    def order(self, transaction_id: str) -> dict[str, Any] | None:
        """The registered sub-order (the live record: hold ``lock``), or None."""
        return self.orders.get(transaction_id)

    def balance(self, mchid: str) -> dict[str, int]:
        """``{"frozen", "available"}`` in fen for merchant ``mchid`` (a sub-merchant or the platform)."""
        frozen = available = 0
        with self.lock:
            for transaction_id, order in self.orders.items():
                if order["sub_mchid"] != mchid or not self.paid(transaction_id):
                    continue
                if order["profit_sharing"]:
                    frozen += order["frozen"]
                else:
                    available += order["amount"] - order.get("refunded", 0)
            available += self.accounts[mchid]
        return {"frozen": frozen, "available": available}

    def holds(self, transaction_id: str) -> int | None:
        """What the sub-merchant still holds of a profit-sharing sub-order (charged, plus its subsidy, less what
        was shared and not returned, less refunds), in fen; None for another order (not limited here)."""
        with self.lock:
            order = self.orders.get(transaction_id)
            if order is None or not order["profit_sharing"]:
                return None
            return order["amount"] + order["subsidy_paid"] - order["shared"] - order.get("refunded", 0)

    def refunded(self, transaction_id: str, amount: int, *, advanced_by: str | None = None) -> None:
        """A refund taken: out of the sub-order's frozen funds (or, once finished, the sub-merchant's available
        ones); ``advanced_by``: out of that merchant's account instead (垫付)."""
        with self.lock:
            order = self.orders.get(transaction_id)
            if order is None:
                return
            order["refunded"] = order.get("refunded", 0) + amount
            if advanced_by is not None:
                self.accounts[advanced_by] -= amount
                if not order["profit_sharing"]:
                    self.accounts[order["sub_mchid"]] += amount  # the sub-merchant keeps what it was paid
            elif order["profit_sharing"] and not order["finished"]:
                order["frozen"] -= amount
            elif order["profit_sharing"]:
                self.accounts[order["sub_mchid"]] -= amount
        self.on_change()

    def unfreeze(self, order: dict[str, Any]) -> None:
        """Finish: what is still frozen becomes the sub-merchant's available funds (call holding ``lock``)."""
        self.accounts[order["sub_mchid"]] += order["frozen"]
        order["frozen"] = 0
        order["finished"] = True

    def settle_processing(self, out_order_no: str) -> dict[str, Any]:
        """The share as a query answers it: a PROCESSING one is FINISHED from now on (a copy)."""
        with self.lock:
            share = self.shares[out_order_no]
            if share["status"] == wechatpay.SHARE_PROCESSING:
                share["status"] = wechatpay.SHARE_FINISHED
                for receiver in share["receivers"]:
                    receiver.update(result=wechatpay.RECEIVER_SUCCESS, finish_time=wechatpay.format_rfc3339())
            answer = copy.deepcopy(share)
        self.on_change()
        return answer

    def changed(self) -> None:
        self.on_change()

    def clear(self) -> None:
        with self.lock:
            for store in (self.orders, self.shares, self.returns, self.subsidies):
                store.clear()
            self.accounts.clear()
            self.posts.clear()
        self.asynchronous = True
        self.on_change()

    # --- persistence ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(
                {
                    "orders": self.orders,
                    "shares": self.shares,
                    "returns": self.returns,
                    "subsidies": self.subsidies,
                    "accounts": dict(self.accounts),
                    "posts": dict(self.posts),
                }
            )

    def load(self, data: dict[str, Any]) -> None:
        with self.lock:
            for name in ("orders", "shares", "returns", "subsidies"):
                setattr(self, name, copy.deepcopy(data.get(name, {})))
            self.accounts = Counter(data.get("accounts", {}))
            self.posts = Counter(data.get("posts", {}))

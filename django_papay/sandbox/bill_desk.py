"""The sandbox's bills: made from its own books on request, handed out behind download URLs that expire.

A day's trade bill holds every sub-order paid that Beijing day (by its success time), every refund accepted
that day (by its acceptance time, with its status then), and every charge that exists only at WeChat Pay
(``add_foreign_charge``, to show "missing here"). The switches a test turns:

- ``not_ready``: a code (NO_STATEMENT_EXIST, STATEMENT_CREATING) the next bill requests get, ``not_ready_times``
  of them (then bills are ready again);
- ``damaged_hash``: the answer names a SHA1 that is not the file's;
- ``missing_column``: the file lacks that column; ``bad_amount``: its first row's 应结订单金额 is not a number;
- ``download_lifetime``: seconds a download URL lives (WeChat Pay: 5 minutes).

Not persisted: bills are made again from the books.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django_papay import wechatpay

from . import bill_file

DOWNLOAD_LIFETIME = 300.0


@dataclass(frozen=True)
class IssuedBill:
    body: bytes  # gzip
    hash_value: str
    expires: float  # time.monotonic()


class BillDesk:
    """Bills on request and their download tokens; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._downloads: dict[str, IssuedBill] = {}
        self._foreign: list[dict[str, Any]] = []
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._downloads.clear()
            self._foreign.clear()
        self.not_ready: str | None = None
        self.not_ready_times = 1
        self.damaged_hash = False
        self.missing_column: str | None = None
        self.bad_amount = False
        self.download_lifetime = DOWNLOAD_LIFETIME

    def add_foreign_charge(
        self, *, mchid: str, sub_mchid: str, amount: int, at: datetime | None = None, out_trade_no: str = ""
    ) -> dict[str, str]:
        """A charge WeChat Pay took that the merchant never stored; its bill row."""
        charge = {"combine_appid": "", "combine_payer_info": {"openid": "o" + wechatpay.nonce(27)}}
        sub = {
            "mchid": mchid,
            "sub_mchid": sub_mchid,
            "out_trade_no": out_trade_no or wechatpay.nonce(32),
            "transaction_id": "4200" + wechatpay.nonce(24, "0123456789"),
            "amount": {"total_amount": amount},
        }
        row = bill_file.payment_row(charge, sub, at or datetime.now(wechatpay.BEIJING))
        with self._lock:
            self._foreign.append(row)
        return row

    def take_not_ready(self) -> str | None:
        """The not-ready code for this request, if a test set one (counted down)."""
        with self._lock:
            code = self.not_ready
            if code is not None:
                self.not_ready_times -= 1
                if self.not_ready_times <= 0:
                    self.not_ready = None
            return code

    def issue(self, rows: list[dict[str, str]]) -> tuple[str, IssuedBill]:
        """Write ``rows`` as a bill (with the switches' damage) behind a new token."""
        columns = [name for name in wechatpay.BILL_COLUMNS if name != self.missing_column]
        if self.bad_amount and rows:
            rows = [{**rows[0], "应结订单金额": "12.3x"}, *rows[1:]]
        out = io.BytesIO()
        digest = bill_file.write_bill(rows, out, columns=columns)
        if self.damaged_hash:
            digest = digest[::-1]
        token = wechatpay.nonce(32)
        issued = IssuedBill(out.getvalue(), digest, time.monotonic() + self.download_lifetime)
        with self._lock:
            self._downloads = {t: b for t, b in self._downloads.items() if b.expires > time.monotonic()}
            self._downloads[token] = issued
        return token, issued

    def download(self, token: str) -> IssuedBill | None:
        """The bill behind ``token``, or None once it has expired (or never was)."""
        with self._lock:
            issued = self._downloads.get(token)
        return issued if issued is not None and issued.expires > time.monotonic() else None

    def rows(
        self, charges: list[dict[str, Any]], day: date, sub_mchid: str | None, refunds: Iterable[dict[str, Any]] = ()
    ) -> list[dict[str, str]]:
        """The day's rows: paid sub-orders by success time, refunds by acceptance time (the Beijing day), then
        the foreign charges."""
        start = datetime(day.year, day.month, day.day, tzinfo=wechatpay.BEIJING)
        end = start + timedelta(days=1)
        paid_rows = {}
        rows = []
        for charge, sub, paid in _paid(charges):
            row = paid_rows[sub["out_trade_no"]] = bill_file.payment_row(charge, sub, paid)
            if start <= paid < end and sub_mchid in (None, sub["sub_mchid"]):
                rows.append(row)
        for refund in refunds:
            accepted = wechatpay.parse_rfc3339(refund.get("create_time"))
            payment = paid_rows.get(refund.get("out_trade_no", ""))
            if accepted is None or payment is None or not start <= accepted < end:
                continue
            if sub_mchid in (None, payment["特约商户号"]):
                rows.append(
                    bill_file.refund_row(
                        payment,
                        refund_id=refund["refund_id"],
                        out_refund_no=refund["out_refund_no"],
                        amount=refund["amount"]["refund"],
                        at=accepted,
                        status=refund.get("status", ""),
                    )
                )
        with self._lock:
            foreign = list(self._foreign)
        for row in foreign:
            paid = datetime.strptime(row["交易时间"], wechatpay.BILL_TIME_FORMAT).replace(tzinfo=wechatpay.BEIJING)
            if start <= paid < end and sub_mchid in (None, row["特约商户号"]):
                rows.append(row)
        return rows


def _paid(charges: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any], datetime]]:
    for charge in charges:
        for sub in charge["sub_orders"]:
            paid = wechatpay.parse_rfc3339(sub.get("success_time"))
            if sub.get("trade_state") in (wechatpay.TRADE_SUCCESS, "REFUND") and paid is not None:
                yield charge, sub, paid

"""Reading a trade bill (交易账单): a stream of typed rows, each amount exact, the summary row checked.

The file is UTF-8 CSV: a header row of column names, one row per payment and one per refund, then a summary
header and one summary row. Columns are found by their header name, never their position (their order is not
fixed [I]); every value of a detail or summary row starts with a backtick, which is stripped. Amounts are yuan
with two decimals and become integer fen by exact decimal arithmetic (never a float). The summary row is
checked against the rows read: a file cut short, or a row lost, is refused.

Anything malformed — a truncated file, a missing column, a row of the wrong width, an amount that is not a
number, a time that is no time — raises ``BillFormatError`` naming the row (1 is the header row).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .. import wechatpay

# The columns matching needs; the others (bank, fee rate, product name, …) may come and go.
REQUIRED = (
    "交易时间",
    "特约商户号",
    "微信订单号",
    "商户订单号",
    "交易状态",
    "应结订单金额",
    "订单金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "退款状态",
    "手续费",
)
SUMMARY_REQUIRED = ("总交易单数", "应结订单总金额", "退款总金额", "手续费总金额")
_AMOUNT = re.compile(r"(-?)(\d{1,15})(?:\.(\d{1,2}))?")


class BillFormatError(ValueError):
    """The bill cannot be read; the message names the row (the header row is row 1)."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(f"bill row {row}: {problem}")
        self.row = row
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BillRow:
    """One payment (``is_refund`` False) or refund row of the bill; amounts in fen."""

    number: int  # the row's number in the file, the header row being 1
    time: datetime  # 交易时间, aware, Beijing time
    sub_mchid: str
    transaction_id: str
    out_trade_no: str
    trade_state: str  # 交易状态: SUCCESS (a payment) or REFUND
    settlement_amount: int  # 应结订单金额
    total_amount: int  # 订单金额
    fee: int  # 手续费 (a refund's is negative: the fee given back)
    refund_id: str = ""
    out_refund_no: str = ""
    refund_amount: int = 0
    refund_status: str = ""

    @property
    def is_refund(self) -> bool:
        return self.trade_state == wechatpay.BILL_REFUND


@dataclass
class Totals:
    """What the rows read add up to, to check the summary row against."""

    rows: int = 0
    payments: int = 0
    refunds: int = 0
    settlement_paid: int = 0  # 应结订单金额 of the payment rows
    settlement_all: int = 0  # 应结订单金额 of every row
    refunded: int = 0
    fees: int = 0
    summary: dict[str, int] = field(default_factory=dict)


def fen(text: str) -> int:
    """``"12.34"`` yuan → 1234 fen, exactly (``"-0.01"`` → -1); ValueError for anything but a yuan amount."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an amount in yuan")
    sign, whole, cents = match.groups()
    value = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    return -value if sign else value


def beijing_day(day: date) -> tuple[datetime, datetime]:
    """The aware start and end (exclusive) of a Beijing day: the bill's day cuts at 00:00 UTC+8 [C]."""
    start = datetime(day.year, day.month, day.day, tzinfo=wechatpay.BEIJING)
    return start, start + timedelta(days=1)


class BillReader:
    """``for row in BillReader(lines)``: the detail rows, in order; the summary row is checked at the end.

    ``totals`` holds what was read (after the loop: the whole bill). Parsing is lazy: a row is read when the
    loop asks for it, so a bill of millions of rows is never held in memory.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = lines
        self.totals = Totals()

    def __iter__(self) -> Iterator[BillRow]:
        reader = csv.reader(self.lines)
        header = next(reader, None)
        if not header:
            raise BillFormatError(1, "the bill is empty: no header row")
        header = [name.strip().lstrip("\ufeff") for name in header]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise BillFormatError(1, f"the header has no column {', '.join(missing)}")
        width = len(header)
        column = {name: header.index(name) for name in REQUIRED}
        number = 1
        for cells in reader:
            number += 1
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if cells[0].strip() == "总交易单数":
                self._summary(reader, cells, number)
                return
            if len(cells) != width:
                raise BillFormatError(number, f"{len(cells)} values where the header names {width} columns")
            yield self._row(number, cells, column)
        raise BillFormatError(number, "the bill ends before its summary row: it was cut short")

    def _row(self, number: int, cells: list[str], column: dict[str, int]) -> BillRow:
        value = {name: _value(cells[index]) for name, index in column.items()}
        try:  # "YYYY-MM-DD HH:MM:SS" (wechatpay.BILL_TIME_FORMAT), Beijing time; fromisoformat is the fast reader
            time = datetime.fromisoformat(value["交易时间"])
        except ValueError:
            time = None
        if time is None or time.tzinfo is not None:
            raise BillFormatError(number, f"交易时间 {value['交易时间']!r} is not a time")
        time = time.replace(tzinfo=wechatpay.BEIJING)
        amounts = {}
        for name in ("应结订单金额", "订单金额", "退款金额", "手续费"):
            try:
                amounts[name] = fen(value[name] or "0")
            except ValueError:
                raise BillFormatError(number, f"{name} {value[name]!r} is not an amount in yuan") from None
        state = value["交易状态"]
        if state not in (wechatpay.BILL_PAYMENT, wechatpay.BILL_REFUND):
            raise BillFormatError(number, f"交易状态 {state!r} is neither SUCCESS nor REFUND")
        row = BillRow(
            number=number,
            time=time,
            sub_mchid=value["特约商户号"],
            transaction_id=value["微信订单号"],
            out_trade_no=value["商户订单号"],
            trade_state=state,
            settlement_amount=amounts["应结订单金额"],
            total_amount=amounts["订单金额"],
            fee=amounts["手续费"],
            refund_id=value["微信退款单号"],
            out_refund_no=value["商户退款单号"],
            refund_amount=amounts["退款金额"],
            refund_status=value["退款状态"],
        )
        if row.is_refund and not (row.out_refund_no or row.refund_id):
            raise BillFormatError(number, "a refund row with neither 商户退款单号 nor 微信退款单号")
        if not row.is_refund and not (row.out_trade_no or row.transaction_id):
            raise BillFormatError(number, "a payment row with neither 商户订单号 nor 微信订单号")
        totals = self.totals
        totals.rows += 1
        totals.settlement_all += row.settlement_amount
        totals.fees += row.fee
        if row.is_refund:
            totals.refunds += 1
            totals.refunded += row.refund_amount
        else:
            totals.payments += 1
            totals.settlement_paid += row.settlement_amount
        return row

    def _summary(self, reader: Iterator[list[str]], header: list[str], number: int) -> None:
        names = [name.strip() for name in header]
        missing = [name for name in SUMMARY_REQUIRED if name not in names]
        if missing:
            raise BillFormatError(number, f"the summary header has no column {', '.join(missing)}")
        cells = next(reader, None)
        number += 1
        if not cells or len(cells) != len(names):
            raise BillFormatError(number, "the summary row is missing or cut short")
        summary = {}
        for name, cell in zip(names, cells, strict=True):
            text = _value(cell)
            try:
                summary[name] = int(text) if name == "总交易单数" else fen(text or "0")
            except ValueError:
                raise BillFormatError(number, f"{name} {text!r} is not a number") from None
        totals = self.totals
        totals.summary = summary
        problems = []
        if summary["总交易单数"] != totals.rows:
            problems.append(f"总交易单数 {summary['总交易单数']} but {totals.rows} rows")
        # 应结订单总金额: the payments' sum [I]; a bill that sums every row's is taken too (the check is for
        # rows lost or altered, and either reading finds those).
        if summary["应结订单总金额"] not in (totals.settlement_paid, totals.settlement_all):
            problems.append(
                f"应结订单总金额 {summary['应结订单总金额']} fen but the rows add up to {totals.settlement_paid}"
            )
        if summary["退款总金额"] != totals.refunded:
            problems.append(f"退款总金额 {summary['退款总金额']} fen but the rows add up to {totals.refunded}")
        if summary["手续费总金额"] != totals.fees:
            problems.append(f"手续费总金额 {summary['手续费总金额']} fen but the rows add up to {totals.fees}")
        if problems:
            raise BillFormatError(number, "the summary row does not match the rows: " + "; ".join(problems))
        for extra in reader:
            number += 1
            if any(cell.strip() for cell in extra):
                raise BillFormatError(number, "a row after the summary row")


def _value(cell: str) -> str:
    """A cell's value: the one leading backtick stripped, and the spaces around it."""
    cell = cell.strip()
    return cell[1:].strip() if cell.startswith(wechatpay.BILL_VALUE_PREFIX) else cell

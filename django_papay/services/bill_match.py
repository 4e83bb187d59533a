"""Matching a bill's rows to our records, in batches, writing each difference as a ``Discrepancy``.

Every payment row is looked up as a ``SubOrder`` by ``out_trade_no`` (商户订单号), then by ``transaction_id``
(微信订单号) for the rest; every refund row as a ``Refund`` by ``out_refund_no`` (商户退款单号), then by
``refund_id`` (微信退款单号); a batch of rows is two queries. Then every SUCCEEDED sub-order of the day (its
``success_time`` in the Beijing day) and every SUCCEEDED refund of the day (sent that day [I: the bill places a
refund by WeChat Pay's acceptance time, which is not stored; ours is the moment before]) that no row matched
is "missing there". What is matched is remembered as ids in sorted arrays (8 bytes each), so a bill of
millions of rows is matched in bounded memory.

The kinds (``Discrepancy.Kind``):

- **missing here** (长款): in the bill, and not ours, or ours but held as not charged (created, failed,
  reversed) or, for a refund the bill shows refunded, as not refunded (failed, closed): money WeChat Pay moved
  that we do not know of (a refund that went through twice is one of these);
- **missing there** (短款): succeeded here, not in the bill;
- **amount**: ours is not the bill's 订单金额; **sub-merchant**: the bill pays another sub-merchant;
- **state**: still processing here (a refund: created, processing or abnormal), paid or refunded there.

Rows whose deduction or refund a query may settle (a deduction processing, failed or reversed; a refund
processing) are collected in ``to_settle`` / ``refunds_to_settle``; the caller settles them and marks what the
query fixed (``reconcile``). A refund row the bill shows still in progress, ours in progress too, is no
difference: the bill never updates [C].
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from .. import wechatpay
from ..models import Deduction, Discrepancy, Reconciliation, Refund, SubOrder
from .bill_parse import BillRow, beijing_day

BATCH = 2000
SETTLEABLE = (Deduction.Status.PROCESSING, Deduction.Status.FAILED, Deduction.Status.REVERSED)
_FIELDS = ("pk", "out_trade_no", "transaction_id", "amount", "sub_mchid", "deduction_id", "deduction__status")
_REFUND_FIELDS = ("pk", "out_refund_no", "refund_id", "amount", "status", "sub_order__sub_mchid")
REFUND_IN_FLIGHT = (Refund.Status.CREATED, Refund.Status.PROCESSING, Refund.Status.ABNORMAL)


@dataclass
class Matched:
    """What matching found beyond the discrepancies it wrote."""

    discrepancies: int = 0
    paid_theirs: int = 0  # the payment rows' 订单金额, fen
    # deduction id → the out_trade_nos of its discrepancies a query may fix; refund id → its out_refund_no
    to_settle: dict[int, list[str]] = field(default_factory=dict)
    refunds_to_settle: dict[int, str] = field(default_factory=dict)
    matched: array = field(default_factory=lambda: array("q"))
    matched_refunds: array = field(default_factory=lambda: array("q"))


def paid_on(day: date, sub_mchid: str = "") -> tuple[QuerySet[SubOrder], QuerySet[SubOrder]]:
    """Our SUCCEEDED sub-orders of ``day`` (of ``sub_mchid``'s, if given), as two queries: those paid that day
    (``success_time``), and those WeChat Pay gave no time for, by when their deduction was settled.

    Two, not one OR: an OR across the join to the deduction can be served by neither table's index, and
    PostgreSQL then reads every sub-order and every deduction for each day reconciled. A row is in one at most.
    """
    start, end = beijing_day(day)
    succeeded = SubOrder.objects.filter(deduction__status=Deduction.Status.SUCCEEDED)
    if sub_mchid:
        succeeded = succeeded.filter(sub_mchid=sub_mchid)
    paid = succeeded.filter(success_time__gte=start, success_time__lt=end)  # papay_suborder_paid_at
    settled = succeeded.filter(  # papay_deduction_settled
        success_time__isnull=True, deduction__settled_at__gte=start, deduction__settled_at__lt=end
    )
    return paid, settled


def refunded_on(day: date, sub_mchid: str = "") -> tuple[QuerySet[Refund], QuerySet[Refund]]:
    """Our SUCCEEDED refunds of ``day`` (of ``sub_mchid``'s sub-orders, if given; the day as the module's docstring
    says), as two queries for the reason ``paid_on`` gives: those sent that day, and those with no time of
    sending, by when they were created."""
    start, end = beijing_day(day)
    succeeded = Refund.objects.filter(status=Refund.Status.SUCCEEDED)
    if sub_mchid:
        succeeded = succeeded.filter(sub_order__sub_mchid=sub_mchid)
    sent = succeeded.filter(sent_at__gte=start, sent_at__lt=end)  # papay_refund_sent
    unsent = succeeded.filter(sent_at__isnull=True, created_at__gte=start, created_at__lt=end)  # by created_at
    return sent, unsent


def read(rows: QuerySet) -> Iterator[Any]:
    """``rows`` as a day is read: 5,000 at a time (through a server-side cursor on PostgreSQL), in no set order.

    Not in primary-key order: PostgreSQL plans a cursor to give its first rows fast (``cursor_tuple_fraction``),
    and to spare sorting one day's rows it would walk the whole table's primary key.
    """
    return rows.order_by().iterator(chunk_size=5000)


class Matcher:
    """Feed it the bill's rows (``match``), then ``missing_there``; discrepancies are written as it goes."""

    def __init__(self, report: Reconciliation) -> None:
        self.report = report
        self.found = Matched()
        self._pending: list[Discrepancy] = []
        limit = connection.features.max_query_params
        self.batch = min(BATCH, limit - 10) if limit else BATCH

    def match(self, rows: Iterable[BillRow]) -> Matched:
        """Match every row of ``rows``, payments and refunds each in their batches, then flush."""
        payments: list[BillRow] = []
        refunds: list[BillRow] = []
        for row in rows:
            batch = refunds if row.is_refund else payments
            batch.append(row)
            if len(batch) >= self.batch:
                (self._refunds if row.is_refund else self._payments)(batch)
                batch.clear()
        self._payments(payments)
        self._refunds(refunds)
        self.flush()
        return self.found

    def missing_there(self, day: date, sub_mchid: str) -> tuple[int, int]:
        """Write a discrepancy for each SUCCEEDED sub-order of ``day`` no row matched; (count, fen) of ours."""
        matched_sorted = array("q", sorted(self.found.matched))
        count = total = 0
        fields = ("pk", "out_trade_no", "transaction_id", "amount", "sub_mchid")
        rows = (row for ours in paid_on(day, sub_mchid) for row in read(ours.values_list(*fields)))
        for pk, out_trade_no, transaction_id, amount, sub_order_mchid in rows:
            count += 1
            total += amount
            index = bisect_left(matched_sorted, pk)
            if index < len(matched_sorted) and matched_sorted[index] == pk:
                continue
            self._add(
                kind=Discrepancy.Kind.MISSING_THERE,
                out_trade_no=out_trade_no,
                transaction_id=transaction_id,
                sub_mchid=sub_order_mchid,
                amount_ours=amount,
                state_ours=Deduction.Status.SUCCEEDED,
            )
        self.flush()
        return count, total

    def refunds_missing_there(self, day: date, sub_mchid: str) -> tuple[int, int]:
        """Write a discrepancy for each SUCCEEDED refund sent on ``day`` that no row matched; (count, fen) ours."""
        matched_sorted = array("q", sorted(self.found.matched_refunds))
        count = total = 0
        fields = ("pk", "out_refund_no", "refund_id", "amount", "sub_order__sub_mchid", "sub_order__out_trade_no")
        rows = (row for ours in refunded_on(day, sub_mchid) for row in read(ours.values_list(*fields)))
        for pk, out_refund_no, refund_id, amount, refund_mchid, out_trade_no in rows:
            count += 1
            total += amount
            index = bisect_left(matched_sorted, pk)
            if index < len(matched_sorted) and matched_sorted[index] == pk:
                continue
            self._add(
                kind=Discrepancy.Kind.MISSING_THERE,
                row=Discrepancy.Row.REFUND,
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
                refund_id=refund_id,
                sub_mchid=refund_mchid,
                amount_ours=amount,
                state_ours=Refund.Status.SUCCEEDED,
            )
        self.flush()
        return count, total

    def flush(self) -> None:
        if self._pending:
            Discrepancy.objects.bulk_create(self._pending, batch_size=1000)
            self.found.discrepancies += len(self._pending)
            self._pending = []

    # --- payments ---------------------------------------------------------------------------------

    def _payments(self, rows: list[BillRow]) -> None:
        if not rows:
            return
        numbers = {row.out_trade_no for row in rows if row.out_trade_no}
        by_number = {
            values[1]: values for values in SubOrder.objects.filter(out_trade_no__in=numbers).values_list(*_FIELDS)
        }
        rest = {row.transaction_id for row in rows if row.out_trade_no not in by_number and row.transaction_id}
        by_transaction = (
            {values[2]: values for values in SubOrder.objects.filter(transaction_id__in=rest).values_list(*_FIELDS)}
            if rest
            else {}
        )
        for row in rows:
            self.found.paid_theirs += row.total_amount
            values = by_number.get(row.out_trade_no) or by_transaction.get(row.transaction_id)
            self._payment(row, values)
        if len(self._pending) >= 1000:
            self.flush()

    def _payment(self, row: BillRow, values: tuple | None) -> None:
        theirs = {
            "out_trade_no": row.out_trade_no,
            "transaction_id": row.transaction_id,
            "sub_mchid": row.sub_mchid,
            "amount_theirs": row.total_amount,
            "state_theirs": row.trade_state,
        }
        if values is None:
            self._add(kind=Discrepancy.Kind.MISSING_HERE, **theirs, note=_("No sub-order of ours has these numbers."))
            return
        pk, out_trade_no, _transaction_id, amount, sub_mchid, deduction_id, status = values
        self.found.matched.append(pk)
        theirs.update(out_trade_no=out_trade_no, amount_ours=amount, state_ours=status)
        if status != Deduction.Status.SUCCEEDED:
            kind = Discrepancy.Kind.STATE if status == Deduction.Status.PROCESSING else Discrepancy.Kind.MISSING_HERE
            self._add(kind=kind, **theirs)
            if status in SETTLEABLE:
                self.found.to_settle.setdefault(deduction_id, []).append(out_trade_no)
            return
        if amount != row.total_amount:
            self._add(kind=Discrepancy.Kind.AMOUNT, **theirs)
        if sub_mchid != row.sub_mchid:
            self._add(
                kind=Discrepancy.Kind.SUB_MERCHANT,
                **theirs,
                note=_("Ours is for sub-merchant %(sub_mchid)s.") % {"sub_mchid": sub_mchid},
            )

    # --- refunds ----------------------------------------------------------------------------------

    def _refunds(self, rows: list[BillRow]) -> None:
        if not rows:
            return
        numbers = {row.out_refund_no for row in rows if row.out_refund_no}
        found = Refund.objects.filter(out_refund_no__in=numbers).values_list(*_REFUND_FIELDS)
        by_number = {values[1]: values for values in found}
        rest = {row.refund_id for row in rows if row.out_refund_no not in by_number and row.refund_id}
        by_id = (
            {values[2]: values for values in Refund.objects.filter(refund_id__in=rest).values_list(*_REFUND_FIELDS)}
            if rest
            else {}
        )
        for row in rows:
            self._refund(row, by_number.get(row.out_refund_no) or by_id.get(row.refund_id))
        if len(self._pending) >= 1000:
            self.flush()

    def _refund(self, row: BillRow, values: tuple | None) -> None:
        theirs = {
            "row": Discrepancy.Row.REFUND,
            "out_trade_no": row.out_trade_no,
            "transaction_id": row.transaction_id,
            "out_refund_no": row.out_refund_no,
            "refund_id": row.refund_id,
            "sub_mchid": row.sub_mchid,
            "amount_theirs": row.refund_amount,
            "state_theirs": row.refund_status,
        }
        if values is None:
            self._add(kind=Discrepancy.Kind.MISSING_HERE, **theirs, note=_("No refund of ours has these numbers."))
            return
        pk, out_refund_no, _refund_id, amount, status, sub_mchid = values
        self.found.matched_refunds.append(pk)
        theirs.update(out_refund_no=out_refund_no, amount_ours=amount, state_ours=status)
        refunded_there = row.refund_status == wechatpay.REFUND_SUCCESS
        if status != Refund.Status.SUCCEEDED:
            if refunded_there:
                kind = Discrepancy.Kind.STATE if status in REFUND_IN_FLIGHT else Discrepancy.Kind.MISSING_HERE
                self._add(kind=kind, **theirs)
                if status == Refund.Status.PROCESSING:
                    self.found.refunds_to_settle[pk] = out_refund_no
            return
        if amount != row.refund_amount:
            self._add(kind=Discrepancy.Kind.AMOUNT, **theirs)
        if sub_mchid != row.sub_mchid:
            self._add(
                kind=Discrepancy.Kind.SUB_MERCHANT,
                **theirs,
                note=_("Ours is for sub-merchant %(sub_mchid)s.") % {"sub_mchid": sub_mchid},
            )

    def _add(self, **fields: object) -> None:
        self._pending.append(Discrepancy(reconciliation=self.report, **fields))


def _batches(rows: Iterable[BillRow], size: int) -> Iterator[list[BillRow]]:
    batch: list[BillRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

"""Reading a trade bill: columns by name, backticks stripped, yuan to fen exactly, the summary checked, and every
malformed file an error naming its row."""

import io
from datetime import datetime, timedelta

import pytest

from django_papay import wechatpay
from django_papay.sandbox import bill_file
from django_papay.services.bill_parse import BillFormatError, BillReader, beijing_day, fen
from django_papay.services.bills import DownloadedBill

PAID = datetime(2026, 12, 1, 23, 59, 59, tzinfo=wechatpay.BEIJING)


def payment(amount=1500, out_trade_no="A1", at=PAID):
    charge = {"combine_appid": "wx1", "combine_payer_info": {"openid": "o1"}}
    sub = {
        "mchid": "1900000109",
        "sub_mchid": "1900000201",
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000000000000000000001",
        "amount": {"total_amount": amount},
    }
    return bill_file.payment_row(charge, sub, at)


def text_of(rows, columns=wechatpay.BILL_COLUMNS):
    out = io.BytesIO()
    bill_file.write_bill(rows, out, columns=columns)
    return DownloadedBill(out, "", 0).lines().read()


def read(text):
    reader = BillReader(io.StringIO(text, newline=""))
    return list(reader), reader.totals


@pytest.mark.parametrize(
    ("text", "expected"), [("0.01", 1), ("12.34", 1234), ("12.3", 1230), ("12", 1200), ("-0.06", -6), ("0.10", 10)]
)
def test_yuan_become_fen_exactly(text, expected):
    assert fen(text) == expected


@pytest.mark.parametrize("text", ["1.234", "1e3", "", "12.3x", "0x10", "NaN", "1,000.00", " 1"])
def test_anything_else_is_no_amount(text):
    with pytest.raises(ValueError):
        fen(text)


def test_rows_are_read_by_name_with_their_backtick_stripped():
    columns = list(reversed(wechatpay.BILL_COLUMNS))  # any order
    (row,), totals = read(text_of([payment(1999)], columns))
    assert (row.out_trade_no, row.sub_mchid, row.transaction_id) == ("A1", "1900000201", "4200000000000000000000000001")
    assert (row.total_amount, row.settlement_amount, row.fee, row.number) == (1999, 1999, 12, 2)
    assert row.time == PAID and not row.is_refund
    assert (totals.rows, totals.payments, totals.settlement_paid) == (1, 1, 1999)


def test_a_refund_row_has_its_numbers_and_a_negative_fee():
    paid = payment(1500)
    refund = bill_file.refund_row(
        paid, refund_id="5030", out_refund_no="R1", amount=500, at=PAID + timedelta(seconds=2)
    )
    (_, row), totals = read(text_of([paid, refund]))
    assert row.is_refund and (row.out_refund_no, row.refund_id, row.refund_amount, row.fee) == ("R1", "5030", 500, -3)
    assert (totals.refunds, totals.refunded, totals.fees) == (1, 500, 9 - 3)


def test_a_summary_that_does_not_add_up_is_refused():
    text = text_of([payment(1500), payment(300, "A2")]).replace("`18.00", "`18.01")
    with pytest.raises(BillFormatError, match=r"bill row 5: the summary row does not match .*应结订单总金额 1801"):
        read(text)


def test_a_lost_row_is_found_by_the_count():
    lines = text_of([payment(1500), payment(0, "A2")]).splitlines(keepends=True)
    with pytest.raises(BillFormatError, match="总交易单数 2 but 1 rows"):
        read("".join(lines[:2] + lines[3:]))


def test_a_truncated_file_names_the_last_row():
    text = "".join(text_of([payment(), payment(1, "A2")]).splitlines(keepends=True)[:3])
    with pytest.raises(BillFormatError, match="bill row 3: the bill ends before its summary row"):
        read(text)


def test_a_row_of_the_wrong_width_names_its_row():
    lines = text_of([payment(), payment(1, "A2")]).splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\r\n").rsplit(",", 1)[0] + "\r\n"
    with pytest.raises(BillFormatError, match="bill row 3: 26 values where the header names 27 columns"):
        read("".join(lines))


def test_a_time_that_is_no_time_names_its_row():
    with pytest.raises(BillFormatError, match="bill row 2: 交易时间 '2026-13-01 00:00:00' is not a time"):
        read(text_of([{**payment(), "交易时间": "2026-13-01 00:00:00"}]))


def test_an_empty_file_is_refused():
    with pytest.raises(BillFormatError, match="bill row 1: the bill is empty"):
        read("")


def test_the_day_cuts_at_midnight_beijing_time():
    start, end = beijing_day(PAID.date())
    assert start <= PAID < end
    assert not start <= PAID + timedelta(seconds=2) < end
    assert start.utcoffset() == timedelta(hours=8)

"""Writing a trade bill file as WeChat Pay does: CSV, a backtick before every value, a summary, gzip, its SHA1.

``write_bill(rows, out)`` streams: rows are written as they come (a generator of millions is fine) and the
summary is added up on the way. ``payment_row`` / ``refund_row`` make a row (column name → text) from the
sandbox's records; amounts are fen in, yuan with two decimals out.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any

from django_papay import wechatpay

# The sandbox's fee: 0.6 % of the settlement amount, half up [I: a common rate; the bill carries what was taken].
FEE_PER_MILLE = 6


def yuan(fen: int) -> str:
    """1234 → ``"12.34"``, -1 → ``"-0.01"``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fee(fen: int) -> int:
    return (fen * FEE_PER_MILLE + 500) // 1000


def bill_time(moment: datetime) -> str:
    return moment.astimezone(wechatpay.BEIJING).strftime(wechatpay.BILL_TIME_FORMAT)


def payment_row(charge: dict[str, Any], sub: dict[str, Any], at: datetime) -> dict[str, str]:
    """The bill row of one paid sub-order of a charge (as the deduction book holds it)."""
    amount = sub["amount"]["total_amount"]
    return {
        **_blank_row(),
        "交易时间": bill_time(at),
        "公众账号ID": sub.get("sub_appid") or charge.get("combine_appid", ""),
        "商户号": sub["mchid"],
        "特约商户号": sub["sub_mchid"],
        "微信订单号": sub.get("transaction_id", ""),
        "商户订单号": sub["out_trade_no"],
        "用户标识": (charge.get("combine_payer_info") or {}).get("openid", ""),
        "交易类型": sub.get("trade_type", wechatpay.TRADE_TYPE),
        "交易状态": wechatpay.BILL_PAYMENT,
        "付款银行": sub.get("bank_type", "OTHERS"),
        "应结订单金额": yuan(amount),
        "手续费": yuan(fee(amount)),
        "订单金额": yuan(amount),
        "商户数据包": sub.get("attach", ""),
    }


def refund_row(
    payment: dict[str, str], *, refund_id: str, out_refund_no: str, amount: int, at: datetime, status: str = "SUCCESS"
) -> dict[str, str]:
    """The bill row of a refund of ``payment`` (its payment row): the fee given back is negative."""
    return {
        **payment,
        "交易时间": bill_time(at),
        "交易状态": wechatpay.BILL_REFUND,
        "微信退款单号": refund_id,
        "商户退款单号": out_refund_no,
        "退款金额": yuan(amount),
        "申请退款金额": yuan(amount),
        "退款类型": "ORIGINAL",
        "退款状态": status,
        "手续费": yuan(-fee(amount)),
    }


def write_bill(
    rows: Iterable[dict[str, str]], out: IO[bytes], *, columns: Sequence[str] = wechatpay.BILL_COLUMNS
) -> str:
    """Write ``rows`` as a gzip bill to ``out`` (only ``columns``, in that order); the decompressed file's SHA1."""
    digest = hashlib.sha1()  # noqa: S324 - WeChat Pay's hash_type for bills
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    count = settlement = refunded = fees = total = asked = 0

    def emit(gz: gzip.GzipFile) -> None:
        data = text.getvalue().encode("utf-8")
        text.seek(0)
        text.truncate()
        digest.update(data)
        gz.write(data)

    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        writer.writerow(columns)
        for number, row in enumerate(rows, 1):
            writer.writerow([wechatpay.BILL_VALUE_PREFIX + row.get(name, "") for name in columns])
            count += 1
            refund = row.get("交易状态") == wechatpay.BILL_REFUND
            if not refund:
                settlement += _fen(row["应结订单金额"])
                total += _fen(row["订单金额"])
            else:
                refunded += _fen(row["退款金额"])
                asked += _fen(row["申请退款金额"])
            fees += _fen(row["手续费"])
            if number % 1000 == 0:
                emit(gz)
        writer.writerow(wechatpay.BILL_SUMMARY_COLUMNS)
        summary = [str(count), yuan(settlement), yuan(refunded), yuan(0), yuan(fees), yuan(total), yuan(asked)]
        writer.writerow([wechatpay.BILL_VALUE_PREFIX + value for value in summary])
        emit(gz)
    return digest.hexdigest()


def _blank_row() -> dict[str, str]:
    row = dict.fromkeys(wechatpay.BILL_COLUMNS, "")
    row.update(
        {name: "0.00" for name in ("代金券金额", "退款金额", "充值券退款金额", "申请退款金额")},
        货币种类=wechatpay.CURRENCY,
        费率="0.60%",
    )
    return row


def _fen(text: str) -> int:
    """Yuan text → fen; a damaged amount (``BillDesk.bad_amount``) adds nothing to the summary."""
    negative = text.startswith("-")
    whole, _, cents = text.lstrip("-").partition(".")
    if not (whole.isdigit() and (cents.isdigit() or not cents)):
        return 0
    value = int(whole) * 100 + int(cents.ljust(2, "0") or 0)
    return -value if negative else value

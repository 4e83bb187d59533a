"""Fetching a day's trade bill (交易账单): the signed GET, then the file, proven by its SHA1.

``GET /v3/bill/tradebill`` is an ordinary signed call whose answer is verified; it names the file's SHA1
(``hash_value``) and a ``download_url`` that lives minutes, used at once. The download is signed too, but its
answer carries no WeChat Pay signature [C] (``client.download``, the one place that skips the check): the SHA1
of the decompressed file must equal ``hash_value`` instead, or the bill is refused. The file is streamed to a
temporary file, never held in memory, and kept compressed as it came (the reconciliation stores it).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tempfile
import zlib
from dataclasses import dataclass
from datetime import date
from typing import IO
from urllib.parse import urlencode

from .. import wechatpay
from ..exceptions import BillNotReady, InvalidResponseError, WeChatPayError
from . import ratelimit
from .connections import get_client

_SHA1 = re.compile(r"[0-9A-Fa-f]{40}")
CHUNK = 1 << 20


@dataclass
class DownloadedBill:
    """A bill as downloaded: ``file`` holds the gzip bytes (at position 0), their SHA1 checked."""

    file: IO[bytes]
    hash_value: str
    size: int

    def lines(self) -> IO[str]:
        """The decompressed CSV as text lines, read as they are asked for."""
        self.file.seek(0)
        return gzip.open(self.file, "rt", encoding="utf-8", newline="")


def trade_bill_path(day: date, sub_mchid: str | None = None) -> str:
    """The query for one day's ALL bill, gzip, of one sub-merchant or (no ``sub_mchid``) all of them."""
    query = {"bill_date": day.isoformat()}
    if sub_mchid:
        query["sub_mchid"] = sub_mchid
    query.update(bill_type=wechatpay.BILL_TYPE_ALL, tar_type=wechatpay.TAR_TYPE_GZIP)
    return f"{wechatpay.TRADE_BILL_PATH}?{urlencode(query)}"


def fetch_trade_bill(day: date, sub_mchid: str | None = None) -> DownloadedBill:
    """The day's bill, downloaded and proven (its SHA1); the caller closes ``file``.

    Raises BillNotReady when WeChat Pay has none yet, InvalidResponseError when the file is not the one named
    (a SHA1 that differs, not gzip), and WeChatPayError (or its network error) for anything else.
    """
    client = get_client()
    ratelimit.take_places(1)  # each of the two calls takes its place under MAX_CALLS_PER_SECOND
    try:
        answer = client.get(trade_bill_path(day, sub_mchid))
    except WeChatPayError as exc:
        if exc.code in wechatpay.BILL_NOT_READY_CODES:
            raise BillNotReady(exc.code, exc.message) from exc
        raise
    data = answer.data
    hash_value, url = data.get("hash_value"), data.get("download_url")
    if (
        data.get("hash_type") != wechatpay.BILL_HASH_TYPE
        or not isinstance(hash_value, str)
        or not _SHA1.fullmatch(hash_value)
        or not isinstance(url, str)
    ):
        raise InvalidResponseError(
            "the trade bill answer names no SHA1 hash_value and download_url",
            code="INVALID_BILL_ANSWER",
            status=answer.status,
            request_id=answer.request_id,
        )
    file = tempfile.TemporaryFile()
    try:
        ratelimit.take_places(1)
        size = client.download(url, file)
        digest = decompressed_sha1(file)
        if digest != hash_value.lower():
            raise InvalidResponseError(
                f"the bill file's SHA1 is {digest}, not the {hash_value} WeChat Pay named: refused",
                code="BILL_HASH_MISMATCH",
                status=None,
            )
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return DownloadedBill(file, hash_value.lower(), size)


def decompressed_sha1(file: IO[bytes]) -> str:
    """The SHA1 (hex) of the gzip ``file``'s decompressed bytes, streamed; InvalidResponseError if not gzip."""
    file.seek(0)
    digest = hashlib.sha1()  # noqa: S324 - WeChat Pay's hash_type, an integrity check, not a password
    try:
        with gzip.GzipFile(fileobj=file, mode="rb") as unpacked:
            while chunk := unpacked.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidResponseError(f"the bill file is not gzip ({exc})", code="BILL_NOT_GZIP", status=None) from exc
    return digest.hexdigest()

"""The bill endpoints (账单): a day's trade bill by its signed GET, and the file behind its download URL.

``GET /v3/bill/tradebill`` answers ``{hash_type, hash_value, download_url}`` (signed, as every answer) or, for
a day without a trade (or while a test says so), NO_STATEMENT_EXIST / STATEMENT_CREATING. The download is a
signed request too; its answer is the gzip file with no WeChat Pay signature [C], and a token that has
expired answers 400.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

from django_papay import wechatpay

from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState

# The status of NO_STATEMENT_EXIST / STATEMENT_CREATING [I: the codes are documented, the status is not].
NOT_READY_STATUS = 400
NOT_READY_MESSAGES = {wechatpay.NO_STATEMENT_EXIST: "账单文件不存在", wechatpay.STATEMENT_CREATING: "账单生成中"}


def trade_bill(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET /v3/bill/tradebill?bill_date=…[&sub_mchid=…]&bill_type=ALL&tar_type=GZIP."""
    query = _query(request.path)
    try:
        day = date.fromisoformat(query.get("bill_date", ""))
    except ValueError:
        raise ApiError(400, wechatpay.PARAM_ERROR, "bill_date must be YYYY-MM-DD") from None
    if query.get("bill_type", wechatpay.BILL_TYPE_ALL) != wechatpay.BILL_TYPE_ALL:
        raise ApiError(400, wechatpay.PARAM_ERROR, "the sandbox makes ALL bills only")
    if query.get("tar_type", wechatpay.TAR_TYPE_GZIP) != wechatpay.TAR_TYPE_GZIP:
        raise ApiError(400, wechatpay.PARAM_ERROR, "the sandbox makes GZIP bills only")
    sub_mchid = query.get("sub_mchid") or None
    if sub_mchid is not None and not sub_mchid.isdigit():
        raise ApiError(400, wechatpay.PARAM_ERROR, "sub_mchid must be digits")
    code = state.bills.take_not_ready()
    refunds = state.refunds.dump()["refunds"].values()  # copies of every refund the sandbox took
    rows = state.bills.rows(state.deductions.charges(), day, sub_mchid, refunds)
    if code is None and not rows:
        code = wechatpay.NO_STATEMENT_EXIST  # no trade that day [C]
    if code is not None:
        raise ApiError(NOT_READY_STATUS, code, NOT_READY_MESSAGES.get(code, code))
    token, issued = state.bills.issue(rows)
    base = state.base_url or f"http://{request.headers.get('Host', '127.0.0.1')}"
    return Reply.json(
        200,
        {
            "hash_type": wechatpay.BILL_HASH_TYPE,
            "hash_value": issued.hash_value,
            "download_url": f"{base}{wechatpay.BILL_DOWNLOAD_PATH}?token={token}",
        },
    )


def download(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET /v3/billdownload/file?token=…: the gzip file, unsigned; 400 once the URL has expired."""
    issued = state.bills.download(_query(request.path).get("token", ""))
    if issued is None:
        raise ApiError(400, wechatpay.INVALID_REQUEST, "下载链接已过期 (the download_url has expired)")
    return Reply(200, issued.body, "application/octet-stream", signed=False)


def _query(path: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(path).query).items()}

"""The route table: which handler answers which method and path, built from ``wechatpay``'s path templates.

Two tables. ``MERCHANT_API_ROUTES`` are WeChat Pay's endpoints: headers and the merchant's signature are
checked before the handler runs (and the HTTP server records the request and applies any queued fault).
``CONTROL_ROUTES`` are the sandbox's own loopback controls under ``/sandbox/``: none of that.

A template's ``{name}`` becomes the named group ``name`` (one path segment), so a handler reads
``match["out_contract_code"]``. To add an endpoint: its handler in ``handlers/`` and one row here.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field

from django_papay import wechatpay

from . import validation
from .handlers import Handler, bills, certificates, contracts, control, deductions, refunds, sharing, subsidies
from .records import RecordedRequest
from .replies import ApiError, Reply
from .state import SandboxState

logger = logging.getLogger("django_papay.sandbox")

CONTROL_PREFIX = "/sandbox/"
CONTROL_CONTRACTS_PATH = "/sandbox/contracts"
CONTROL_SIGN_PATH = CONTROL_CONTRACTS_PATH + "/{out_contract_code}/sign"
CONTROL_TERMINATE_PATH = CONTROL_CONTRACTS_PATH + "/{out_contract_code}/terminate"
CONTROL_FAULTS_PATH = "/sandbox/faults"
CONTROL_BALANCE_PATH = "/sandbox/balances/{mchid}"
CONTROL_REFUNDS_PATH = "/sandbox/refunds"
CONTROL_FINISH_REFUND_PATH = CONTROL_REFUNDS_PATH + "/{out_refund_no}/finish"

_PARAMETER = re.compile(r"\{([a-z_]+)\}")


def pattern(template: str) -> re.Pattern[str]:
    """``template``'s regular expression: literal text, each ``{name}`` one path segment named ``name``."""
    parts = _PARAMETER.split(template)  # literal, name, literal, name, …, literal
    return re.compile(
        "".join(rf"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts))
    )


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", pattern(self.template))


MERCHANT_API_ROUTES: tuple[Route, ...] = (
    Route("POST", wechatpay.APP_PRESIGN_PATH, contracts.presign_app),
    Route("POST", wechatpay.MINI_PROGRAM_PRESIGN_PATH, contracts.presign_mini_program),
    Route("GET", wechatpay.CONTRACT_PATH, contracts.query),
    Route("POST", wechatpay.TERMINATE_PATH, contracts.terminate),
    Route("GET", wechatpay.CERTIFICATES_PATH, certificates.download),
    Route("POST", wechatpay.DEDUCT_PATH, deductions.deduct),
    Route("GET", wechatpay.DEDUCTION_PATH, deductions.query),
    Route("POST", wechatpay.REVERSE_PATH, deductions.reverse),
    Route("POST", wechatpay.SHARE_ORDERS_PATH, sharing.share),
    Route("GET", wechatpay.SHARE_ORDERS_PATH, sharing.query),
    Route("POST", wechatpay.FINISH_ORDER_PATH, sharing.finish),
    Route("GET", wechatpay.UNSPLIT_AMOUNT_PATH, sharing.unsplit_amount),
    Route("POST", wechatpay.RETURN_ORDERS_PATH, sharing.return_share),
    Route("GET", wechatpay.RETURN_ORDERS_PATH, sharing.query_return),
    Route("POST", wechatpay.SUBSIDY_CREATE_PATH, subsidies.create),
    Route("GET", wechatpay.TRADE_BILL_PATH, bills.trade_bill),
    Route("GET", wechatpay.BILL_DOWNLOAD_PATH, bills.download),
    Route("POST", wechatpay.REFUND_APPLY_PATH, refunds.apply),
    Route("GET", wechatpay.REFUND_BY_NUMBER_PATH, refunds.query_by_number),
    Route("GET", wechatpay.REFUND_BY_ID_PATH, refunds.query_by_id),
    Route("POST", wechatpay.ABNORMAL_REFUND_PATH, refunds.retry_abnormal),
)

CONTROL_ROUTES: tuple[Route, ...] = (
    Route("GET", CONTROL_CONTRACTS_PATH, control.list_contracts),
    Route("GET", CONTROL_BALANCE_PATH, control.balance),
    Route("POST", CONTROL_SIGN_PATH, control.sign),
    Route("POST", CONTROL_TERMINATE_PATH, control.terminate),
    Route("GET", CONTROL_FAULTS_PATH, control.list_faults),
    Route("POST", CONTROL_FAULTS_PATH, control.queue_fault),
    Route("DELETE", CONTROL_FAULTS_PATH, control.clear_faults),
    Route("GET", CONTROL_REFUNDS_PATH, control.list_refunds),
    Route("POST", CONTROL_REFUNDS_PATH, control.switch_refunds),
    Route("POST", CONTROL_FINISH_REFUND_PATH, control.finish_refund),
)


def is_control(path: str) -> bool:
    """True for the sandbox's own controls (``/sandbox/…``), whatever the method; the query is ignored."""
    return path.split("?", 1)[0].startswith(CONTROL_PREFIX)


def resolve(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The route for ``path`` (query ignored): 404 when no route has the path, 405 when none has the method."""
    bare_path = path.split("?", 1)[0]
    allowed = []
    for route in routes:
        match = route.pattern.fullmatch(bare_path)
        if match is None:
            continue
        if route.method == method:
            return route, match
        allowed.append(route.method)
    if allowed:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here; use {', '.join(allowed)}")
    raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, f"no such resource: {bare_path}")


def merchant_reply(state: SandboxState, request: RecordedRequest) -> Reply:
    """A merchant-API request's reply: route, check headers and signature, run the handler."""
    return _reply(MERCHANT_API_ROUTES, state, request, merchant_api=True)


def control_reply(state: SandboxState, request: RecordedRequest) -> Reply:
    """A loopback control's reply: route (a trailing slash is fine) and run the handler, no merchant checks."""
    bare_path = request.path.split("?", 1)[0]
    if bare_path.endswith("/"):
        request = dataclasses.replace(request, path=bare_path.rstrip("/"))
    return _reply(CONTROL_ROUTES, state, request, merchant_api=False)


def _reply(routes: tuple[Route, ...], state: SandboxState, request: RecordedRequest, *, merchant_api: bool) -> Reply:
    try:
        route, match = resolve(routes, request.method, request.path)
        if merchant_api:
            validation.check_headers(
                request.method, request.headers, wechatpay_public_key_id=state.wechatpay_public_key_id
            )
            validation.check_authorization(
                request.method,
                request.path,
                request.headers,
                request.body,
                mchid=state.mchid,
                serial_no=state.merchant_serial_no,
                public_key=state.merchant_public_key,
            )
        return route.handler(state, request, match)
    except ApiError as refusal:
        return refusal.reply()
    except Exception:
        logger.exception("the sandbox failed on %s %s", request.method, request.path)
        return Reply.error(500, wechatpay.SYSTEM_ERROR, "the sandbox failed; see the django_papay.sandbox log")

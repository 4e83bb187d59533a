"""The WeChat Pay endpoints the sandbox knows, as a route table.

To add an endpoint, write a handler ``(sandbox, request, match) -> Answer`` and add a :class:`Route`
to ``ROUTES``. Headers and the signature are checked before any handler runs, except on the sandbox's
own loopback controls (``merchant_api=False``, see ``control``).
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import certificates, contracts, control, deductions, validation
from .answers import Answer, ApiError

if TYPE_CHECKING:
    from .server import RecordedRequest, Sandbox

Handler = Callable[["Sandbox", "RecordedRequest", "re.Match[str]"], Answer]

_ID_ALPHABET = string.ascii_letters + string.digits
PRESIGN_ID_LENGTH = 48


@dataclass(frozen=True)
class Route:
    """``merchant_api`` routes are WeChat Pay's: headers and the merchant's signature are checked first,
    faults apply and requests are recorded. The others are the sandbox's controls, none of that."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    merchant_api: bool = True


def new_pre_entrustweb_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(PRESIGN_ID_LENGTH))


def presign(
    sandbox: Sandbox,
    request: RecordedRequest,
    match: re.Match[str],
    *,
    fields: tuple[validation.FieldRule, ...] = validation.PRESIGN_FIELDS,
    channel: str = "app",
) -> Answer:
    """APP pre-sign: open a signing session and answer its ``pre_entrustweb_id``."""
    data = validation.check_body(request.body, fields)
    pre_entrustweb_id = new_pre_entrustweb_id()
    sandbox._record_presign(pre_entrustweb_id, {**data, "channel": channel, "created_at": time.time()})
    return Answer.json(
        200,
        {
            "pre_entrustweb_id": pre_entrustweb_id,
            "mchid": sandbox.mchid,
            "plan_id": data["plan_id"],
            "out_contract_code": data["out_contract_code"],
        },
    )


def presign_mini_program(sandbox: Sandbox, request: RecordedRequest, match: re.Match[str]) -> Answer:
    """Mini-program pre-sign: the same session, for a mini-program (no return_app, no attach)."""
    return presign(sandbox, request, match, fields=contracts.MINI_PROGRAM_PRESIGN_FIELDS, channel="mini_program")


COMBINE_PAPAY = "/v3/ecommerce/combine-papay"
CONTROL_CONTRACTS = "/sandbox/contracts"
_CONTRACT = r"(?P<out_contract_code>[^/]+)"
_BY_CODE = rf"{COMBINE_PAPAY}/contracts/plan-id/(?P<plan_id>[0-9]+)/out-contract-code/{_CONTRACT}"

ROUTES: tuple[Route, ...] = (
    Route("POST", re.compile(rf"{COMBINE_PAPAY}/contracts/pre-entrust-sign"), presign),
    Route("POST", re.compile(rf"{COMBINE_PAPAY}/contracts/pre-entrust-sign/mini-program"), presign_mini_program),
    Route("GET", re.compile(_BY_CODE), contracts.query),
    Route("GET", re.compile(r"/v3/certificates"), certificates.download),
    Route("POST", re.compile(rf"{_BY_CODE}/terminate"), contracts.terminate),
    Route("POST", re.compile(rf"{COMBINE_PAPAY}/transactions"), deductions.deduct),
    Route("GET", re.compile(rf"{COMBINE_PAPAY}/transactions/(?P<combine_out_trade_no>[^/]+)"), deductions.query),
    Route("POST", re.compile(rf"{COMBINE_PAPAY}/transactions/(?P<combine_out_trade_no>[^/]+)/reverse"),
          deductions.reverse),
    # Loopback controls: the sandbox plays the WeChat user (no merchant Authorization).
    Route("GET", re.compile(rf"{CONTROL_CONTRACTS}/?"), control.list_contracts, merchant_api=False),
    Route("POST", re.compile(rf"{CONTROL_CONTRACTS}/{_CONTRACT}/sign"), control.sign, merchant_api=False),
    Route("POST", re.compile(rf"{CONTROL_CONTRACTS}/{_CONTRACT}/terminate"), control.terminate, merchant_api=False),
)


def is_control(path: str) -> bool:
    """True when ``path`` (query ignored) belongs to one of the sandbox's own control routes."""
    bare_path = path.split("?", 1)[0]
    return any(not route.merchant_api and route.pattern.fullmatch(bare_path) for route in ROUTES)


def resolve(method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The route for ``path`` (query ignored): 404 when no route has the path, 405 when none has the method."""
    bare_path = path.split("?", 1)[0]
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(bare_path)
        if match is None:
            continue
        if route.method == method:
            return route, match
        allowed.append(route.method)
    if allowed:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here; use {', '.join(allowed)}")
    raise ApiError(404, "RESOURCE_NOT_EXISTS", f"no such resource: {bare_path}")

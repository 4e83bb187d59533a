"""Loopback controls for playing the WeChat user against a running sandbox, by hand or from the demo.

    GET  /sandbox/contracts                                  the pre-signed contracts and where they notify
    POST /sandbox/contracts/{out_contract_code}/sign         the user signs: ECOMMERCE_ENTRUST.SIGN is delivered
    POST /sandbox/contracts/{out_contract_code}/terminate    the contract ends: ECOMMERCE_ENTRUST.TERMINATE
    GET  /sandbox/faults                                     the faults queued for the next merchant-API requests
    POST /sandbox/faults                                     queue one: {"fault": "system_error", "times": 1}, or an
                                                             error answer {"status": 400, "code": "PARAM_ERROR",
                                                             "message": "…", "detail": {"field": "plan_id"}}
    DELETE /sandbox/faults                                   drop the queued faults
    GET  /sandbox/refunds                                    the refunds taken, and the switches for new ones
    POST /sandbox/refunds                                    switch: {"outcome": "ABNORMAL", "not_enough": true}
    POST /sandbox/refunds/{out_refund_no}/finish             WeChat Pay ends it later: {"status": "SUCCESS"} (the
                                                             default; or ABNORMAL, CLOSED), REFUND.* delivered

The POSTs take an optional JSON body ``{"repeat": 1, "delay": 0, "mode": "USER_TERMINATE"}`` and answer
``{"notification_id": …, "url": …, "deliveries": [{"status": …, "error": …}, …]}``; with a ``delay`` the
delivery happens in the background and ``deliveries`` is empty. For example::

    curl -X POST http://127.0.0.1:8765/sandbox/contracts/C20250101A1/sign -d '{"repeat": 2}'
    curl -X POST http://127.0.0.1:8765/sandbox/faults -d '{"fault": "ratelimit"}'   # the next call gets a 429

The fault names are ``faults.FAULTS``'s (ratelimit, system_error, unavailable, timeout, reset, bad_signature, …).

These are not WeChat Pay endpoints: they need no merchant Authorization, take no queued fault or delay
and are not recorded in ``Sandbox.requests`` (see ``routes.CONTROL_ROUTES``). Anyone who can reach the
sandbox can use them, which is one more reason it listens on loopback only.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from django_papay import wechatpay

from .. import faults
from ..outgoing import OutgoingNotification
from ..records import RecordedRequest
from ..refund_notices import RefundNotices
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..user import WeChatUser

MAX_REPEAT = 15  # WeChat Pay gives up after 15 tries
MAX_DELAY = 3600.0


def list_contracts(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """Every pre-signed ``out_contract_code`` (its latest pre-sign), with its notify_url."""
    presigns = state.contracts.presigns().items()
    latest = {data["out_contract_code"]: (pre_entrustweb_id, data) for pre_entrustweb_id, data in presigns}
    contracts = [
        {
            "out_contract_code": code,
            "plan_id": data["plan_id"],
            "appid": data["appid"],
            "notify_url": data["notify_url"],
            "delivered_to": state.rewrite(data["notify_url"]),
            "pre_entrustweb_id": pre_entrustweb_id,
        }
        for code, (pre_entrustweb_id, data) in latest.items()
    ]
    return Reply.json(200, contracts)


def sign(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    user = WeChatUser(state)
    code = _presigned_code(user, match)
    options = _options(request.body)
    return _deliver(user, user.sign_notification(code), options)


def terminate(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    user = WeChatUser(state)
    code = _presigned_code(user, match)
    options = _options(request.body)
    notification = user.terminate_notification(code, mode=options.get("mode", wechatpay.USER_TERMINATE))
    return _deliver(user, notification, options)


def _deliver(user: WeChatUser, notification: OutgoingNotification, options: dict[str, Any]) -> Reply:
    user.record(notification)
    # A delivery made here runs in this handler thread; the server keeps serving from other threads.
    delay = options.get("delay", 0.0)
    deliveries = user.deliver(notification, repeat=options.get("repeat", 1), delay=delay, wait=not delay)
    return Reply.json(
        200,
        {
            "notification_id": notification.id,
            "url": notification.url,
            "deliveries": [{"status": delivery.status, "error": delivery.error} for delivery in deliveries],
        },
    )


def _presigned_code(user: WeChatUser, match: re.Match[str]) -> str:
    code = unquote(match["out_contract_code"])
    if user.presign_for(code) is None:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, f"the sandbox never pre-signed {code}; pre-sign it first")
    return code


def _options(body: bytes) -> dict[str, Any]:
    """The optional JSON body: ``repeat`` (1 to 15), ``delay`` (seconds) and ``mode``, checked."""
    if not body.strip():
        return {}
    try:
        options = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        options = None
    if not isinstance(options, dict):
        raise ApiError(400, wechatpay.PARAM_ERROR, "the body must be a JSON object, or empty")
    repeat = options.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
        raise ApiError(400, wechatpay.PARAM_ERROR, f"repeat must be an integer from 1 to {MAX_REPEAT}")
    delay = options.get("delay", 0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY:
        raise ApiError(400, wechatpay.PARAM_ERROR, f"delay must be a number of seconds from 0 to {MAX_DELAY:g}")
    mode = options.get("mode")
    if mode is not None and (not isinstance(mode, str) or not mode):
        raise ApiError(400, wechatpay.PARAM_ERROR, "mode must be a contract_termination_mode such as USER_TERMINATE")
    checked: dict[str, Any] = {"repeat": repeat, "delay": float(delay)}
    if mode is not None:
        checked["mode"] = mode
    return checked


# --- refunds ---------------------------------------------------------------------------------------

REFUND_OUTCOMES = (
    wechatpay.REFUND_SUCCESS,
    wechatpay.REFUND_PROCESSING,
    wechatpay.REFUND_ABNORMAL,
    wechatpay.REFUND_CLOSED,
)


def list_refunds(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    refunds = [
        {name: refund[name] for name in ("out_refund_no", "refund_id", "out_trade_no", "status", "notify_url")}
        for refund in state.refunds.dump()["refunds"].values()
    ]
    return Reply.json(
        200, {"outcome": state.refunds.outcome, "not_enough": state.refunds.not_enough, "refunds": refunds}
    )


def switch_refunds(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """How the next refunds end (``outcome``) and whether the sub-merchants' balance is short (``not_enough``)."""
    options = _json_object(request.body)
    outcome, not_enough = (
        options.get("outcome", state.refunds.outcome),
        options.get("not_enough", state.refunds.not_enough),
    )
    if outcome not in REFUND_OUTCOMES or not isinstance(not_enough, bool):
        raise ApiError(
            400, wechatpay.PARAM_ERROR, f"outcome must be one of {', '.join(REFUND_OUTCOMES)}; not_enough true or false"
        )
    state.refunds.outcome, state.refunds.not_enough = outcome, not_enough
    return list_refunds(state, request, match)


def finish_refund(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    number = unquote(match["out_refund_no"])
    status = (
        _json_object(request.body).get("status", wechatpay.REFUND_SUCCESS)
        if request.body.strip()
        else wechatpay.REFUND_SUCCESS
    )
    if status not in REFUND_OUTCOMES or status == wechatpay.REFUND_PROCESSING:
        raise ApiError(400, wechatpay.PARAM_ERROR, "status must be SUCCESS, ABNORMAL or CLOSED")
    if state.refunds.get(number) is None:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, f"the sandbox never took refund {number}")
    deliveries = RefundNotices(state).finish_refund(number, status)
    return Reply.json(
        200, {"deliveries": [{"status": delivery.status, "error": delivery.error} for delivery in deliveries]}
    )


# --- faults ----------------------------------------------------------------------------------------


def list_faults(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    return Reply.json(200, {"pending": state.faults.names()})


def queue_fault(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """Queue a named fault or a signed error answer for the next ``times`` merchant-API requests."""
    options = _json_object(request.body)
    times = options.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= MAX_REPEAT:
        raise ApiError(400, wechatpay.PARAM_ERROR, f"times must be an integer from 1 to {MAX_REPEAT}")
    if "fault" in options:
        try:
            fault: faults.Fault = faults.named(str(options["fault"]))
        except ValueError as exc:
            raise ApiError(400, wechatpay.PARAM_ERROR, str(exc)) from None
    else:
        status, code = options.get("status"), options.get("code")
        detail = options.get("detail")
        if not (isinstance(status, int) and 400 <= status <= 599 and isinstance(code, str) and code):
            raise ApiError(
                400, wechatpay.PARAM_ERROR, 'give {"fault": NAME} or {"status": 4xx/5xx, "code": "…", "message": "…"}'
            )
        if detail is not None and not isinstance(detail, dict):
            raise ApiError(400, wechatpay.PARAM_ERROR, "detail must be a JSON object")
        fault = faults.ErrorAnswer(
            status, code, str(options.get("message") or "answer injected by the sandbox"), detail
        )
    state.faults.push(fault, times)
    return Reply.json(200, {"pending": state.faults.names()})


def clear_faults(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    state.faults.clear()
    return Reply.json(200, {"pending": []})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise ApiError(400, wechatpay.PARAM_ERROR, "the body must be a JSON object")
    return value

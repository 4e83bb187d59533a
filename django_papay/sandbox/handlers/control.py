"""Loopback controls for playing the WeChat user against a running sandbox, by hand or from the demo.

    GET  /sandbox/contracts                                  the pre-signed contracts and where they notify
    POST /sandbox/contracts/{out_contract_code}/sign         the user signs: ECOMMERCE_ENTRUST.SIGN is delivered
    POST /sandbox/contracts/{out_contract_code}/terminate    the contract ends: ECOMMERCE_ENTRUST.TERMINATE

The POSTs take an optional JSON body ``{"repeat": 1, "delay": 0, "mode": "USER_TERMINATE"}`` and answer
``{"notification_id": …, "url": …, "deliveries": [{"status": …, "error": …}, …]}``; with a ``delay`` the
delivery happens in the background and ``deliveries`` is empty. For example::

    curl -X POST http://127.0.0.1:8765/sandbox/contracts/C20250101A1/sign -d '{"repeat": 2}'

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

from ..outgoing import OutgoingNotification
from ..records import RecordedRequest
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

"""The App's JSON endpoints: the signed-in user pre-signs their own contract and asks whether it is signed.

    POST app/presign/                             {"plan_id": 12535, "channel": "app"}
         → the user's contract for the plan: its live session and launch parameters, or its signed state
    GET  app/contracts/<out_contract_code>/       the user's own contract's state
         ?refresh=1                               while pre-signed, ask WeChat Pay first (throttled)

Who asks: ``PAPAY["APP_AUTHENTICATE"](request)`` when the site sets it (an App token in a header: no CSRF check,
a browser never sends such a header on its own), else ``request.user`` from the session, with Django's CSRF
check on POST. Errors are ``{"code", "message"}``: 401 anonymous; 403 CSRF; 404 a contract that is not the
user's (never saying whether it exists), or a code outside WeChat Pay's rule for one (never looked up); 415 a
body not sent as ``application/json`` (UTF-8); 400 a bad body (not a JSON object, over 4 KB or nested over
``MAX_BODY_DEPTH``), plan or channel; 429 with ``Retry-After`` when the
user's pre-sign budget is spent; 503 (with ``Retry-After``) when WeChat Pay failed in a way a retry can fix, 502
when it refused. The rules themselves (one contract per user and plan, locks, budget) live in ``services/app.py``.
The views stay out of ATOMIC_REQUESTS: the budget's claims must be committed before they are counted.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from . import conf
from .exceptions import WeChatPayError
from .models import Contract, out_contract_code_validator
from .notifications import nesting_depth
from .services import app, launch_parameters
from .wechatpay import format_rfc3339

logger = logging.getLogger("django_papay.app_api")

MAX_BODY_BYTES = 4096  # {"plan_id": …, "channel": …} is a few dozen bytes
MAX_BODY_DEPTH = 4  # ... and one level deep; deeper is not the App's (and deep enough recursion is a 500)
JSON_CHARSETS = ("", "utf-8", "utf8")  # JSON is UTF-8 (RFC 8259); a charset parameter may say so
RETRY_AFTER_WECHATPAY = 5  # seconds, for WeChat Pay's retryable errors


class AppError(Exception):
    """An answer other than 200: ``status``, and the body's ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def json_endpoint(method: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., JsonResponse]]:
    """A view answering JSON: its dict with 200, an AppError or WeChat Pay's error as ``{"code", "message"}``."""

    def decorate(view: Callable[..., dict[str, Any]]) -> Callable[..., JsonResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            try:
                if request.method != method:
                    raise AppError(405, "METHOD_NOT_ALLOWED", _("Use %(method)s.") % {"method": method})
                return _answer(200, view(request, *args, **kwargs))
            except AppError as exc:
                response = _answer(exc.status, {"code": exc.code, "message": exc.message})
                if exc.retry_after is not None:
                    response["Retry-After"] = str(exc.retry_after)
                if exc.status == 405:
                    response["Allow"] = method
                return response
            except WeChatPayError as exc:
                return _wechatpay_failed(exc)
            except (ImproperlyConfigured, ValidationError):
                logger.exception("the App's %s could not be served", request.path)
                return _answer(500, {"code": "NOT_CONFIGURED", "message": _("Signing is not available right now.")})

        # CSRF is checked in _user() for session-authenticated requests only; a header token needs none.
        return csrf_exempt(transaction.non_atomic_requests(wrapper))

    return decorate


@json_endpoint("POST")
def presign(request: HttpRequest) -> dict[str, Any]:
    user = _user(request)
    body = _body(request)
    plan_id = body.get("plan_id")
    if isinstance(plan_id, bool) or not isinstance(plan_id, int) or plan_id not in conf.app_plan_ids():
        raise AppError(400, "INVALID_PLAN", _("This plan cannot be signed from the App."))
    channel = body.get("channel", Contract.Channel.APP)
    if channel not in Contract.Channel.values:
        raise AppError(400, "INVALID_CHANNEL", _('channel must be "app" or "mini_program".'))
    try:
        contract = app.presign_for_user(user, plan_id, channel)
    except app.PresignBudgetSpent as exc:
        raise AppError(
            429, "PRESIGN_LIMIT", _("Too many signing attempts; try again later."), retry_after=exc.retry_after
        ) from exc
    return contract_state(contract)


@json_endpoint("GET")
def contract(request: HttpRequest, out_contract_code: str) -> dict[str, Any]:
    user = _user(request)
    try:  # a code WeChat Pay could never have (a NUL, 33 characters) is nobody's: not looked up at all
        out_contract_code_validator(out_contract_code)
    except ValidationError:
        raise AppError(404, "NOT_FOUND", _("No such contract.")) from None
    found = app.users_contract(user, out_contract_code)
    if found is None:
        raise AppError(404, "NOT_FOUND", _("No such contract."))
    if request.GET.get("refresh") in ("1", "true"):
        app.refresh(found)
    return contract_state(found)


def contract_state(contract: Contract) -> dict[str, Any]:
    """What the App is told about a contract. A session that ran out reads ``expired`` before any cron marks it."""
    now = timezone.now()
    live = contract.presign_session_is_live(now)
    status = contract.status
    if status == Contract.Status.PRESIGNED and not live:
        status = Contract.Status.EXPIRED
    return {
        "out_contract_code": contract.out_contract_code,
        "plan_id": contract.plan_id,
        "status": status,
        "channel": contract.presign_channel or None,
        "pre_entrustweb_id": contract.pre_entrustweb_id if live else None,
        "expires_at": _time(contract.presign_expires_at) if live else None,
        "launch": launch_parameters(contract, now),
        "signed_at": _time(contract.signed_at),
        "contract_expired_at": _time(contract.contract_expired_at),
        "terminated_at": _time(contract.terminated_at),
    }


# --- the request ----------------------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason  # the reason, instead of Django's HTML page


def _no_response(request: HttpRequest) -> HttpResponse:
    """The view the CSRF check is run for, as middleware: never called (the check only reads the request)."""
    raise AssertionError("the CSRF check does not call its view")


def _user(request: HttpRequest) -> Any:
    authenticate = conf.app_authenticate()
    if authenticate is not None:
        user = authenticate(request)
        if user is not None and user.is_authenticated and user.is_active:
            return user
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise AppError(401, "NOT_AUTHENTICATED", _("Sign in first."))
    if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
        check = _CsrfCheck(_no_response)
        check.process_request(request)
        reason = check.process_view(request, _no_response, (), {})
        if reason:
            raise AppError(403, "CSRF_FAILED", _("CSRF check failed: %(reason)s") % {"reason": reason})
    return user


def _body(request: HttpRequest) -> dict[str, Any]:
    # The App sends application/json. Anything else is refused unread: text/plain, in particular, is what a
    # page on another site can POST without a CORS preflight.
    charset = (request.content_params or {}).get("charset", "").lower()
    if request.content_type != "application/json" or charset not in JSON_CHARSETS:
        raise AppError(415, "UNSUPPORTED_MEDIA_TYPE", _("Send the body as application/json (UTF-8)."))
    raw = request.read(MAX_BODY_BYTES + 1)
    try:
        body = json.loads(raw) if len(raw) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        body = None
    if not isinstance(body, dict) or nesting_depth(body) > MAX_BODY_DEPTH:
        raise AppError(400, "INVALID_REQUEST", _("Send a JSON object."))
    return body


# --- the answer -----------------------------------------------------------------------------------


def _wechatpay_failed(exc: WeChatPayError) -> JsonResponse:
    """WeChat Pay's error for the App: 503 when sending again later can work, 502 when WeChat Pay refused."""
    if exc.retryable:
        response = _answer(503, {"code": exc.code, "message": _("WeChat Pay is busy; try again shortly.")})
        response["Retry-After"] = str(RETRY_AFTER_WECHATPAY)
        return response
    return _answer(502, {"code": exc.code, "message": _("WeChat Pay refused the request.")})


def _answer(status: int, data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _time(moment: datetime | None) -> str | None:
    return format_rfc3339(moment) if moment is not None else None  # as WeChat Pay writes times

"""The view WeChat Pay calls with its notifications: ECOMMERCE_ENTRUST.SIGN / .TERMINATE and REFUND.*.

Its contract with WeChat Pay: a 2xx means "received, stop"; anything else means "deliver again"
(15 tries over about 24 hours). So we answer 4xx only for requests we will never accept — forged,
malformed, not about our contracts — and 5xx when processing failed and a redelivery can succeed.
Every delivery is stored, trusted or not: checked in memory first (pure CPU, no side effect), then
written in the same transaction as the state change it caused; and the view stays out of
ATOMIC_REQUESTS so that log row survives a failed processing. Nothing here calls out: WeChat Pay waits 5 s at most.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import TypeVar

from django.contrib.auth import decorators as auth_decorators
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .exceptions import InvalidNotification
from .models import Notification
from .services import receive_notification

View = TypeVar("View", bound=Callable[..., HttpResponse])


def _login_not_required(view_func: View) -> View:
    """Django 5.1's ``login_not_required`` for older Djangos, which have no LoginRequiredMiddleware to obey it."""
    view_func.login_required = False  # type: ignore[attr-defined]
    return view_func


login_not_required = getattr(auth_decorators, "login_not_required", _login_not_required)


# WeChat Pay's notifications are about 1 KiB; refuse anything far larger without reading it.
MAX_BODY_BYTES = 64 * 1024
# Headers a proxy in front of the site might add that have no place in an audit log.
UNLOGGED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
# What is stored of the headers: WeChat Pay sends about a dozen short ones; a proxy or a prober may send
# megabytes. Longer values are cut, and headers past the total are left out; the row says what was cut.
MAX_HEADER_VALUE_CHARS = 1024
MAX_STORED_HEADERS_CHARS = 16 * 1024
CUT_HEADERS_KEY = "(cut)"


# WeChat Pay logs in nowhere: a site-wide LoginRequiredMiddleware (Django 5.1+) must not redirect it.
@login_not_required
@transaction.non_atomic_requests
@csrf_exempt
@require_POST
def notify(request: HttpRequest) -> HttpResponse:
    delivery = Notification(headers=stored_headers(request.headers), remote_addr=_ip(request.META.get("REMOTE_ADDR")))
    body = _read_body(request)
    if body is None:
        delivery.result = Notification.Result.REJECTED
        delivery.error = f"body larger than {MAX_BODY_BYTES} bytes; not read"
        delivery.save()
        return _fail(413, delivery.error)
    delivery.body = body.decode("utf-8", "backslashreplace")  # what is not UTF-8 is kept, as \xNN escapes

    try:
        receive_notification(delivery, request.headers, body)  # stores the delivery, whatever the outcome
    except InvalidNotification as exc:
        response = _fail(exc.status, exc.message)
        if exc.unauthenticated:
            # The service logs these at most once per 10 s, with a count; Django's own warning per response
            # ("Unauthorized: /papay/notify/") would put a forger's flood in the site's log all the same.
            response._has_been_logged = True  # type: ignore[attr-defined]  # what Django's log_response sets
        return response
    except Exception:  # logged by the service, and recorded on the delivery when it could be stored
        return _fail(500, "processing failed; please deliver again")
    return HttpResponse(status=204)


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers as logged: no credentials, each value at most ``MAX_HEADER_VALUE_CHARS``, all of them at most
    ``MAX_STORED_HEADERS_CHARS``; what was cut is said under ``CUT_HEADERS_KEY``."""
    stored: dict[str, str] = {}
    cut_values, left_out, left_out_chars, budget = [], [], 0, MAX_STORED_HEADERS_CHARS
    for name, value in headers.items():
        if name.lower() in UNLOGGED_HEADERS:
            continue
        if len(value) > MAX_HEADER_VALUE_CHARS:
            cut_values.append(f"{name} ({len(value)} characters)")
            value = value[:MAX_HEADER_VALUE_CHARS] + "…"
        if len(name) + len(value) > budget:
            left_out.append(name)
            left_out_chars += len(name) + len(value)
            continue
        budget -= len(name) + len(value)
        stored[name] = value
    notes = []
    if cut_values:
        notes.append(f"cut to {MAX_HEADER_VALUE_CHARS} characters: {', '.join(cut_values)}")
    if left_out:
        notes.append(f"{len(left_out)} headers left out (at least {left_out_chars} characters): {', '.join(left_out)}")
    if notes:
        stored[CUT_HEADERS_KEY] = "; ".join(notes)[:MAX_HEADER_VALUE_CHARS]
    return stored


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over the limit (judged by Content-Length before reading)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    body = request.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _ip(value: str | None) -> str | None:
    try:
        address = ipaddress.ip_address(value or "")
    except ValueError:
        return None
    # An IPv6 zone ("fe80::1%eth0") names an interface of this host; PostgreSQL's inet has no room for it.
    return str(address).partition("%")[0]


def _fail(status: int, message: str) -> HttpResponse:
    # What JsonResponse sends, without its encoder class: the body is two strings (every forgery gets one).
    body = json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False)
    return HttpResponse(body, content_type="application/json", status=status)

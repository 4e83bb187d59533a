"""The view WeChat Pay calls with ECOMMERCE_ENTRUST.SIGN and .TERMINATE notifications.

Its contract with WeChat Pay: a 2xx means "received, stop"; anything else means "deliver again"
(15 tries over about 24 hours). So we answer 4xx only for requests we will never accept — forged,
malformed, not about our contracts — and 5xx when processing failed and a redelivery can succeed.
Every delivery is stored, trusted or not: checked in memory first (pure CPU, no side effect), then
written in the same transaction as the state change it caused; and the view stays out of
ATOMIC_REQUESTS so that log row survives a failed processing. Nothing here calls out: WeChat Pay waits 5 s at most.
"""

from __future__ import annotations

import ipaddress

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import notifications
from .exceptions import InvalidNotification
from .models import Notification
from .services import receive_notification

# WeChat Pay's notifications are about 1 KiB; refuse anything far larger without reading it.
MAX_BODY_BYTES = 64 * 1024
# Headers a proxy in front of the site might add that have no place in an audit log.
UNLOGGED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})


@transaction.non_atomic_requests
@csrf_exempt
@require_POST
def notify(request: HttpRequest) -> HttpResponse:
    delivery = Notification(
        headers={k: v for k, v in request.headers.items() if k.lower() not in UNLOGGED_HEADERS},
        remote_addr=_ip(request.META.get("REMOTE_ADDR")),
    )
    body = _read_body(request)
    if body is None:
        delivery.result = Notification.Result.REJECTED
        delivery.error = f"body larger than {MAX_BODY_BYTES} bytes; not read"
        delivery.save()
        return _fail(413, delivery.error)
    delivery.body = body.decode("utf-8", "backslashreplace")  # what is not UTF-8 is kept, as \xNN escapes
    delivery.notification_id, delivery.event_type = notifications.peek(body)

    try:
        receive_notification(delivery, request.headers, body)  # stores the delivery, whatever the outcome
    except InvalidNotification as exc:
        return _fail(exc.status, exc.message)
    except Exception:  # logged and recorded on the delivery by the service
        return _fail(500, "processing failed; please deliver again")
    return HttpResponse(status=204)


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


def _fail(status: int, message: str) -> JsonResponse:
    return JsonResponse({"code": "FAIL", "message": message}, status=status, json_dumps_params={"ensure_ascii": False})

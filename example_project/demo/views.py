"""The "App" page: a small web page that plays the platform's App against django-papay's App endpoints.

A button asks ``django_papay:app-presign`` for a signing session and shows the launch parameters a real App
would hand the WeChat OpenSDK; "sign in WeChat" asks the sandbox to play the user (server-side, because the
sandbox is another origin and sends no CORS headers); the page then polls ``django_papay:app-contract`` with
``?refresh=1`` until the contract reads signed.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from django_papay import conf
from django_papay.loopback import is_loopback_host
from django_papay.models import Contract

LOGIN_URL = reverse_lazy("demo-login")  # any user may sign in here, staff or not


@login_required(login_url=LOGIN_URL)
def app_page(request: HttpRequest) -> HttpResponse:
    plan_id = sorted(conf.app_plan_ids())[0]
    return render(request, "demo/app.html", {"plan_id": plan_id})


@login_required(login_url=LOGIN_URL)
@require_POST
def sandbox_sign(request: HttpRequest, out_contract_code: str) -> JsonResponse:
    """The sandbox's "the user signs" control, for the user's own contract, on a loopback sandbox only."""
    if not Contract.objects.filter(user=request.user, out_contract_code=out_contract_code).exists():
        return JsonResponse({"code": "NOT_FOUND", "message": "No such contract."}, status=404)
    base_url = conf.base_url()
    if not is_loopback_host(urlsplit(base_url).hostname or ""):
        return JsonResponse({"code": "NOT_SANDBOX", "message": "BASE_URL is not the loopback sandbox."}, status=403)
    answer = requests.post(
        f"{base_url}/sandbox/contracts/{quote(out_contract_code, safe='')}/sign",
        timeout=10,
        verify=settings.PAPAY.get("CA_BUNDLE") or True,
    )
    return JsonResponse(answer.json(), status=answer.status_code, safe=False)

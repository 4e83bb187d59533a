"""Who may use the App's endpoints: the signed-in user, for their own contracts only, CSRF-checked on a session,
and the site's token hook for an App; anything else is a JSON error that says nothing about other users."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.middleware.csrf import get_token
from django.test import Client

from django_papay.models import Contract

from .helpers import PLAN_ID, app_contract, app_presign

pytestmark = pytest.mark.django_db

TOKENS = {"app-token-of-alice": "alice"}


def token_user(request):
    """A site's APP_AUTHENTICATE hook: the user an ``Authorization: Bearer …`` header names, else None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    username = TOKENS.get(token) if scheme == "Bearer" else None
    return User.objects.filter(username=username).first() if username else None


def test_anonymous_is_told_to_sign_in_and_nothing_is_created(app_papay, sandbox):
    answer = app_presign(Client())
    assert answer.status_code == 401
    assert answer.json()["code"] == "NOT_AUTHENTICATED"
    assert Contract.objects.count() == 0 and sandbox.requests == []


def test_anonymous_cannot_read_a_contract(app_papay, sandbox, app_user):
    code = app_presign(app_user()).json()["out_contract_code"]
    assert app_contract(Client(), code).status_code == 401


def test_another_users_contract_is_not_found_exactly_like_a_missing_one(app_papay, sandbox, app_user):
    code = app_presign(app_user("13812348888")).json()["out_contract_code"]
    other = app_user("13900000000")
    theirs, missing = app_contract(other, code, refresh=True), app_contract(other, "NOSUCHCONTRACT")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"code": "NOT_FOUND", "message": "No such contract."}
    assert len(sandbox.requests) == 1  # their refresh asked WeChat Pay nothing


def test_a_second_user_presigning_the_plan_gets_a_contract_of_their_own(app_papay, sandbox, app_user):
    first = app_presign(app_user("13812348888")).json()
    second = app_presign(app_user("13900000000")).json()
    assert second["out_contract_code"] != first["out_contract_code"]
    assert second["pre_entrustweb_id"] != first["pre_entrustweb_id"]
    mine = Contract.objects.get(out_contract_code=first["out_contract_code"])
    assert mine.user.username == "13812348888" and mine.pre_entrustweb_id == first["pre_entrustweb_id"]


def test_session_post_without_csrf_token_is_refused(app_papay, sandbox, app_user):
    answer = app_presign(app_user(enforce_csrf_checks=True))
    assert answer.status_code == 403 and answer.json()["code"] == "CSRF_FAILED"
    assert Contract.objects.count() == 0 and sandbox.requests == []


def test_session_post_with_csrf_token_is_served(app_papay, sandbox, app_user):
    client = app_user(enforce_csrf_checks=True)
    token = get_token(client.get("/papay/app/contracts/X/").wsgi_request)  # any page that sets the cookie
    client.cookies["csrftoken"] = token
    answer = client.post(
        "/papay/app/presign/", {"plan_id": PLAN_ID}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert answer.status_code == 200, answer.content


def test_app_token_from_the_sites_hook_needs_no_csrf_token(app_papay, sandbox):
    app_papay["APP_AUTHENTICATE"] = token_user
    User.objects.create_user("alice")
    app = Client(enforce_csrf_checks=True, headers={"Authorization": "Bearer app-token-of-alice"})
    answer = app_presign(app)
    assert answer.status_code == 200, answer.content
    assert Contract.objects.get().user.username == "alice"


def test_a_wrong_app_token_is_anonymous(app_papay, sandbox):
    app_papay["APP_AUTHENTICATE"] = "tests.test_app_api_access.token_user"
    User.objects.create_user("alice")
    answer = app_presign(Client(headers={"Authorization": "Bearer guessed"}))
    assert answer.status_code == 401


def test_unknown_plan_is_a_bad_request(app_papay, sandbox, app_user):
    answer = app_presign(app_user(), plan_id=99999)
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_PLAN"
    assert Contract.objects.count() == 0 and sandbox.requests == []


def test_plan_id_as_text_is_a_bad_request(app_papay, sandbox, app_user):
    assert app_presign(app_user(), plan_id=str(PLAN_ID)).status_code == 400


def test_unknown_channel_is_a_bad_request(app_papay, sandbox, app_user):
    answer = app_presign(app_user(), channel="h5")
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_CHANNEL"


def test_a_body_that_is_not_a_json_object_is_a_bad_request(app_papay, sandbox, app_user):
    answer = app_user().post("/papay/app/presign/", data="[12535]", content_type="application/json")
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST"


def test_get_on_the_presign_endpoint_is_not_allowed(app_papay, sandbox, app_user):
    answer = app_user().get("/papay/app/presign/")
    assert answer.status_code == 405 and answer["Allow"] == "POST"


def test_display_account_comes_from_the_sites_hook(app_papay, sandbox, app_user):
    app_papay["DISPLAY_ACCOUNT"] = lambda user: f"会员 {user.pk}"
    app_presign(app_user())
    contract = Contract.objects.get()
    assert contract.contract_display_account == f"会员 {contract.user.pk}"
    assert sandbox.requests[0].json()["contract_display_account"] == contract.contract_display_account


def test_default_display_account_masks_the_username(app_papay, sandbox, app_user):
    app_presign(app_user("13812348888"))
    app_presign(app_user("alice"))
    assert sorted(Contract.objects.values_list("contract_display_account", flat=True)) == ["138****8888", "a***e"]


def test_display_account_longer_than_wechatpay_allows_is_refused_before_sending(app_papay, sandbox, app_user):
    app_papay["DISPLAY_ACCOUNT"] = lambda user: "x" * 33
    answer = app_presign(app_user())
    assert answer.status_code == 500 and answer.json()["code"] == "NOT_CONFIGURED"
    assert Contract.objects.count() == 0 and sandbox.requests == []


def test_errors_speak_the_users_language(app_papay, sandbox, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    answer = app_presign(Client())
    assert answer.json() == {"code": "NOT_AUTHENTICATED", "message": "请先登录。"}

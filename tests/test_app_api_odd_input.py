"""Odd requests to the App's endpoints: a JSON error with the endpoints' usual shape, never a 500,
and nothing stored, sent to WeChat Pay or even asked of the database about contracts."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_papay.models import AppSigning, Contract, PresignAttempt

from .helpers import PLAN_ID, app_contract

pytestmark = pytest.mark.django_db


def post_presign(client, body: str, content_type: str = "application/json"):
    """POST app/presign/ with exactly this body and Content-Type ("": no Content-Type at all)."""
    return client.generic("POST", reverse("django_papay:app-presign"), body, content_type=content_type)


def assert_nothing_stored_or_sent(sandbox):
    assert not Contract.objects.exists() and not AppSigning.objects.exists()
    assert not PresignAttempt.objects.exists() and sandbox.requests == []


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        nested(2000),  # ~4 KB of arrays: Python's JSON decoder gives up with RecursionError
        f'{{"plan_id": {PLAN_ID}, "channel": {nested(1900)}}}',
        f'{{"plan_id": {PLAN_ID}, "extra": {nested(40)}}}',  # decodes, but nests far deeper than the body can
        f'{{"plan_id": {PLAN_ID}, "extra": {{"a": {{"b": {{"c": {{"d": {{}}}}}}}}}}}}',
    ],
    ids=["arrays 2000 deep", "channel 1900 deep", "extra 40 deep", "objects 6 deep"],
)
def test_deeply_nested_json_is_a_400_with_nothing_stored_or_sent(app_papay, sandbox, app_user, body):
    answer = post_presign(app_user(), body)
    assert answer.status_code == 400
    assert answer.json() == {"code": "INVALID_REQUEST", "message": "Send a JSON object."}
    assert_nothing_stored_or_sent(sandbox)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",  # what a browser's fetch() sends for a string body: no CORS preflight
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "application/json; charset=gbk",
        "",
    ],
)
def test_a_body_that_is_not_declared_json_is_a_415_with_nothing_stored_or_sent(
    app_papay, sandbox, app_user, content_type
):
    answer = post_presign(app_user(), json.dumps({"plan_id": PLAN_ID}), content_type)
    assert answer.status_code == 415
    assert answer.json()["code"] == "UNSUPPORTED_MEDIA_TYPE" and "application/json" in answer.json()["message"]
    assert_nothing_stored_or_sent(sandbox)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"])
def test_json_declared_with_its_utf8_charset_is_served(app_papay, sandbox, app_user, content_type):
    answer = post_presign(app_user(), json.dumps({"plan_id": PLAN_ID}), content_type)
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "presigned" and len(sandbox.requests) == 1


@pytest.mark.parametrize(
    "code",
    ["abc\x00", "abc\x01", "\x7f", "abc\u2028", "a" * 33, "abc-def", "契约"],
    ids=repr,
)
def test_a_contract_code_outside_wechatpays_rule_is_a_404_before_any_query(app_papay, sandbox, app_user, code):
    client = app_user()
    with CaptureQueriesContext(connection) as queries:
        answer = app_contract(client, code, refresh=True)
    assert answer.status_code == 404
    assert answer.json() == {"code": "NOT_FOUND", "message": "No such contract."}
    assert not [query["sql"] for query in queries if "django_papay_contract" in query["sql"]]
    assert sandbox.requests == []

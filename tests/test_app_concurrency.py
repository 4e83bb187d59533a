"""Taps at the same moment, as only a real database shows them: each thread has its own connection.

These run in the PostgreSQL pass of scripts/test.sh (SQLite serialises writers and has no row locks, so there
they are skipped, saying why).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from django_papay.models import AppSigning, Contract, PresignAttempt
from django_papay.wechatpay import APP_PRESIGN_PATH

from .helpers import PLAN_ID, app_presign, in_parallel

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL row locks: run with PAPAY_TEST_DATABASE=postgres"
    ),
]


def _devices(user: User, count: int) -> list[Client]:
    """``count`` sessions of one user (two phones, or one impatient thumb)."""
    clients = [Client() for _ in range(count)]
    for client in clients:
        client.force_login(user)
    return clients


def test_two_taps_at_once_make_one_contract_and_one_presign(app_papay, sandbox):
    sandbox.response_delay = 0.3  # the first pre-sign is still in flight when the second tap arrives
    clients = _devices(User.objects.create_user("13812348888"), 2)
    answers = in_parallel([lambda c=client: app_presign(c) for client in clients])
    assert [answer.status_code for answer in answers] == [200, 200], answers
    first, second = (answer.json() for answer in answers)
    assert first == second
    assert Contract.objects.count() == 1 and AppSigning.objects.count() == 1
    assert [r.path for r in sandbox.requests] == [APP_PRESIGN_PATH]
    assert PresignAttempt.objects.count() == 1


def test_parallel_taps_on_many_plans_never_exceed_the_budget(app_papay, sandbox):
    plans = list(range(PLAN_ID, PLAN_ID + 8))
    app_papay["APP_PLAN_IDS"] = plans
    app_papay["APP_PRESIGN_LIMIT"] = (3, 3600)
    clients = _devices(User.objects.create_user("13812348888"), len(plans))
    answers = in_parallel(
        [lambda c=client, p=plan: app_presign(c, p) for client, plan in zip(clients, plans, strict=True)]
    )
    statuses = sorted(answer.status_code for answer in answers)
    # Never more than the limit; at the very edge, claims made at the same instant may all be refused (safe side).
    assert statuses.count(200) <= 3 and set(statuses) <= {200, 429}, statuses
    assert len(sandbox.requests) == statuses.count(200)
    assert PresignAttempt.objects.count() == statuses.count(200)

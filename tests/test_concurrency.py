"""Races that only a real database shows: parallel deliveries, SIGN against TERMINATE, two staff at once.

Each thread has its own database connection. These run in the PostgreSQL pass of scripts/test.sh
(SQLite serialises writers and has no row locks, so there they are skipped, saying why).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_papay.exceptions import ContractStateError
from django_papay.models import Contract, Notification
from django_papay.services import presign

from .helpers import APPID, NOTIFY_URL, deliver, in_parallel

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL row locks: run with PAPAY_TEST_DATABASE=postgres"
    ),
]


def _post(notification) -> int:
    return deliver(notification).status_code


def test_fifty_parallel_deliveries_of_one_sign_change_state_once(presigned_contract, sandbox, signals):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    statuses = in_parallel([lambda: _post(notification.signed_again()) for _ in range(50)])
    assert statuses == [204] * 50
    assert [(kind, pk) for kind, pk, _ in signals] == [("signed", presigned_contract.pk)]
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    results = sorted(Notification.objects.values_list("result", flat=True))
    assert results == ["applied"] + ["duplicate"] * 49


def test_fifty_parallel_deliveries_without_receivers_change_state_once(presigned_contract, sandbox):
    # No receiver connected: on PostgreSQL the short path frames its own transaction (BEGIN … COMMIT).
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    statuses = in_parallel([lambda: _post(notification.signed_again()) for _ in range(50)])
    assert statuses == [204] * 50
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    results = sorted(Notification.objects.values_list("result", flat=True))
    assert results == ["applied"] + ["duplicate"] * 49


def test_parallel_deliveries_for_an_unknown_contract_create_it_once(papay, sandbox, signals):
    notification = sandbox.sign_notification("ELSEWHERE42", plan_id=12535, appid=APPID, url=NOTIFY_URL)
    statuses = in_parallel([lambda: _post(notification.signed_again()) for _ in range(20)])
    assert statuses == [204] * 20
    assert Contract.objects.filter(out_contract_code="ELSEWHERE42").count() == 1
    assert len(signals) == 1


def test_sign_and_terminate_racing_end_in_operate_time_order(papay, sandbox, signals):
    contracts = [presign(Contract.objects.create(plan_id=12535, contract_display_account=str(i))) for i in range(8)]
    signed_at = timezone.now() - timedelta(minutes=5)
    tasks = []
    for contract in contracts:
        sign = sandbox.sign_notification(contract.out_contract_code, operate_time=signed_at)
        end = sandbox.terminate_notification(contract.out_contract_code, operate_time=signed_at + timedelta(minutes=1))
        tasks += [lambda n=sign: _post(n), lambda n=end: _post(n)]
    assert in_parallel(tasks) == [204] * len(tasks)
    fired = [(kind, pk) for kind, pk, _ in signals]
    for contract in contracts:
        assert Contract.objects.get(pk=contract.pk).status == Contract.Status.TERMINATED
        assert fired.count(("terminated", contract.pk)) == 1
        assert fired.count(("signed", contract.pk)) <= 1  # 1 if the SIGN won the race, 0 if it came second


def test_two_staff_presigning_one_contract_store_one_consistent_result(papay, sandbox, contract):
    sandbox.response_delay = 0.3  # both requests are in flight at once

    def staff():
        return presign(Contract.objects.get(pk=contract.pk))

    results = in_parallel([staff, staff])
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ContractStateError), results
    (winner,) = [r for r in results if isinstance(r, Contract)]
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == Contract.Status.PRESIGNED
    assert stored.pre_entrustweb_id == winner.pre_entrustweb_id
    assert stored.pre_entrustweb_id in sandbox.presigns
    assert stored.last_error == ""

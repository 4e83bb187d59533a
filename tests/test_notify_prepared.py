"""The notify store's prepared statements (PostgreSQL): prepared on a connection's second delivery, sent as
EXECUTE from then on, and a statement that vanished behind our back (a pooler, a DEALLOCATE) costs nothing but
the ORM store's way for that delivery — never a lost or doubled move."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_papay.models import Contract, Notification
from django_papay.services import notify_prepared, presign

from .helpers import PLAN_ID, deliver

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's short way only")


@pytest.fixture
def fresh_connection(monkeypatch):
    """No statement of ours prepared or counted on the test's connection, and preparing allowed on it (as
    OPTIONS {"prepare_threshold": 5} would)."""
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", 5)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    notify_prepared._uses.pop(connection.connection, None)
    monkeypatch.setattr(notify_prepared, "_enabled", True)


def _presigned(count: int) -> list[Contract]:
    return [
        presign(Contract.objects.create(plan_id=PLAN_ID, contract_display_account="138****8888")) for _ in range(count)
    ]


def _messages(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_connections_second_delivery_prepares_and_its_third_sends_only_execute(papay, sandbox, fresh_connection):
    contracts = _presigned(3)
    sent = []
    for contract in contracts:
        with CaptureQueriesContext(connection) as queries:
            assert deliver(sandbox.sign_notification(contract.out_contract_code)).status_code == 204
        sent.append(_messages(queries))
    first, second, third = sent
    assert len(first) == 2 and "FOR UPDATE" in first[0] and "EXECUTE" not in " ".join(first)
    prepares = [message for message in second if message.startswith("PREPARE")]
    assert len(prepares) == 4  # the lock, the duplicate check, the contract's UPDATE, the row's INSERT
    assert len(third) == 2 and third[0].startswith("BEGIN;EXECUTE papay_") and third[1].endswith(";COMMIT")
    assert "FOR UPDATE" not in " ".join(third) and third[1].count("EXECUTE papay_") == 2
    assert all(Contract.objects.get(pk=c.pk).status == Contract.Status.SIGNED for c in contracts)
    assert list(Notification.objects.values_list("result", flat=True)) == ["applied"] * 3


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_statement_gone_behind_our_back_falls_back_to_the_orm_and_moves_the_contract_once(
    papay, sandbox, fresh_connection, caplog
):
    contracts = _presigned(3)
    for contract in contracts[:2]:  # the second delivery prepared every statement
        deliver(sandbox.sign_notification(contract.out_contract_code))
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's next server connection looks like
    notification = sandbox.sign_notification(contracts[2].out_contract_code)
    assert deliver(notification).status_code == 204
    assert Contract.objects.get(pk=contracts[2].pk).status == Contract.Status.SIGNED
    assert "no longer prepares" in caplog.text and notify_prepared._enabled is False
    with CaptureQueriesContext(connection) as queries:  # preparing is off: a repeat goes plain, and is a repeat
        assert deliver(notification.signed_again()).status_code == 204
    assert not any("EXECUTE" in message or "PREPARE" in message for message in _messages(queries))
    results = Notification.objects.filter(contract=contracts[2]).order_by("pk").values_list("result", flat=True)
    assert list(results) == ["applied", "duplicate"]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_forged_delivery_after_a_lost_statement_is_still_refused_and_stored(papay, sandbox, keys, fresh_connection):
    contract = _presigned(1)[0]
    forged = sandbox.sign_notification(contract.out_contract_code).signed_again(private_key=keys.stranger)
    for _ in range(2):  # the second one prepared the INSERT
        assert deliver(forged).status_code == 401
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert deliver(forged).status_code == 401
    assert Notification.objects.filter(result=Notification.Result.REJECTED).count() == 3
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.PRESIGNED


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_no_statement_is_prepared_on_djangos_default_connection_which_keeps_poolers_working(
    papay, sandbox, fresh_connection, monkeypatch
):
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)  # Django's default
    contracts = _presigned(3)
    with CaptureQueriesContext(connection) as queries:
        for contract in contracts:
            assert deliver(sandbox.sign_notification(contract.out_contract_code)).status_code == 204
    assert len(queries) == 6 and not any("EXECUTE" in message for message in _messages(queries))


def test_placeholders_become_numbered_parameters():
    assert notify_prepared._numbered('SELECT "id" FROM t WHERE a = %s AND b = %s') == (
        'SELECT "id" FROM t WHERE a = $1 AND b = $2'
    )
    assert notify_prepared._numbered("SELECT 1") == "SELECT 1"

"""What one delivery costs the database, counted, so the round trips cannot grow back unnoticed.

Each statement the ORM sends is one round trip, and so is each message of the PostgreSQL path (several
statements in one). Django's own BEGIN and COMMIT do not show in ``CaptureQueriesContext``; the PostgreSQL
path's explicit ones ride on its messages and do. Transactional tests: no test transaction around the view,
as in production. Also here: a database error in the final write, on each path.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_papay.models import Contract, Notification
from django_papay.services import notify_postgresql

from .helpers import deliver

pytestmark = pytest.mark.django_db(transaction=True)
POSTGRESQL_PATH = connection.vendor == "postgresql"


@pytest.fixture(params=["short", "orm"] if POSTGRESQL_PATH else ["orm"])
def path(request, monkeypatch) -> str:
    """Each path the database has: PostgreSQL's two-message one, and the ORM's (every database)."""
    if request.param == "short" and os.environ.get("PAPAY_NOTIFY_PATH") == "orm":
        pytest.skip("PAPAY_NOTIFY_PATH=orm: the short path is off for this run")
    if request.param == "orm":
        monkeypatch.setattr(notify_postgresql, "usable", lambda *args: False)
    return request.param


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split(" ", 1)[0].upper() for query in queries.captured_queries]


def test_a_successful_delivery_takes_two_messages_on_postgresql_and_four_statements_on_the_orm(
    presigned_contract, sandbox, path
):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    with CaptureQueriesContext(connection) as queries:
        assert deliver(notification).status_code == 204
    if path == "short":
        # BEGIN; SELECT … FOR UPDATE; SELECT <duplicate>   then   UPDATE contract; INSERT row; COMMIT
        assert len(queries) == 2, queries.captured_queries
        first, second = (query["sql"] for query in queries.captured_queries)
        assert first.startswith("BEGIN;") and "FOR UPDATE" in first and first.count(";") == 2
        assert second.startswith("UPDATE") and "INSERT" in second and second.endswith(";COMMIT")
    else:
        # BEGIN, the lock, the duplicate check, the contract's UPDATE, the row's INSERT, COMMIT: six round
        # trips (psycopg sends its BEGIN unlogged; SQLite's shows). No savepoint.
        assert [s for s in _statements(queries) if s != "BEGIN"] == ["SELECT", "SELECT", "UPDATE", "INSERT", "COMMIT"]
        assert not any("ORDER BY" in q["sql"] and "FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    assert Notification.objects.get().result == "applied"


def test_a_duplicate_takes_as_many_round_trips_and_writes_only_its_row(presigned_contract, sandbox, path):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    deliver(notification)
    with CaptureQueriesContext(connection) as queries:
        assert deliver(notification.signed_again()).status_code == 204
    assert "UPDATE" not in _statements(queries)
    assert len(queries) == (2 if path == "short" else 4 + ("BEGIN" in _statements(queries)))  # lock, check, row, commit
    assert list(Notification.objects.order_by("pk").values_list("result", flat=True)) == ["applied", "duplicate"]


def test_a_forged_delivery_costs_one_insert(presigned_contract, sandbox, keys, path):
    forged = sandbox.sign_notification(presigned_contract.out_contract_code).signed_again(private_key=keys.stranger)
    with CaptureQueriesContext(connection) as queries:
        assert deliver(forged).status_code == 401
    if path == "short":  # one message: its row committed without waiting for the disk, for that transaction only
        assert len(queries) == 1, queries.captured_queries
        sql = queries.captured_queries[0]["sql"]
        assert sql.startswith("BEGIN;SET LOCAL synchronous_commit TO OFF;INSERT ") and sql.endswith(";COMMIT")
        with connection.cursor() as cursor:  # the same connection: the site's own setting again
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] != "off"
    else:
        assert _statements(queries) == ["INSERT"]
    assert Notification.objects.get().result == "rejected"


def test_a_signed_delivery_refused_after_verifying_waits_for_the_disk(presigned_contract, sandbox, path):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code, attach="a\x00b")
    with CaptureQueriesContext(connection) as queries:
        assert deliver(notification).status_code == 400
    assert not any("synchronous_commit" in query["sql"] for query in queries.captured_queries)
    assert _statements(queries)[-1] == "INSERT"
    assert Notification.objects.get().result == "rejected"


def _fail_applied_inserts() -> None:
    """A trigger that makes the database refuse the row of an applied delivery (a disk full, a constraint)."""
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION papay_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER papay_refuse BEFORE INSERT ON {table} FOR EACH ROW "
                "WHEN (NEW.result = 'applied') EXECUTE FUNCTION papay_refuse()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER papay_refuse BEFORE INSERT ON {table} WHEN NEW.result = 'applied' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def _allow_applied_inserts() -> None:
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER papay_refuse ON {table}")
            cursor.execute("DROP FUNCTION papay_refuse()")
        else:
            cursor.execute("DROP TRIGGER papay_refuse")


@pytest.mark.parametrize("receivers", [False, True], ids=["no receivers", "receivers"])
def test_a_database_error_in_the_final_write_undoes_the_change_and_stores_the_failure(
    presigned_contract, sandbox, path, receivers, request
):
    fired = request.getfixturevalue("signals") if receivers else []  # receivers: Django's atomic frames it
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)
    _fail_applied_inserts()
    try:
        assert deliver(notification).status_code == 500
    finally:
        _allow_applied_inserts()
    assert fired == []  # the write failed before any receiver ran
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.PRESIGNED
    failed = Notification.objects.get()
    assert (failed.verified, failed.processed, failed.result) == (True, False, "failed")
    assert "refused" in failed.error
    assert deliver(notification.signed_again()).status_code == 204
    assert Contract.objects.get(pk=presigned_contract.pk).status == Contract.Status.SIGNED
    assert list(Notification.objects.order_by("pk").values_list("result", flat=True)) == ["failed", "applied"]

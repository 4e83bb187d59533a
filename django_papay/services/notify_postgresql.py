"""The notify path's short way on PostgreSQL: a SIGN or TERMINATE for an existing contract in two messages.

The same statements, in the same order and with the same guarantees as ``notifications._apply`` (the
ORM's path, which SQLite, other databases and every rarer case take): the contract row locked FOR UPDATE;
the duplicate check as its own statement after the lock (under READ COMMITTED each statement takes a fresh
snapshot, so it sees whatever the lock's previous holder committed); the contract's UPDATE and the
delivery's INSERT; one commit. What it saves is messages and the ORM's statement building: psycopg 3's
client-side binding (Django's default) sends several statements in one message, so

    BEGIN; SELECT … FOR UPDATE; SELECT <duplicate>        then        UPDATE contract; INSERT row; COMMIT

are two round trips instead of six. When a receiver of ``contract_signed``/``contract_terminated`` is
connected, or the caller already holds a transaction, Django's ``atomic`` frames them instead (its BEGIN and
COMMIT, or a savepoint, are then two round trips more), so a receiver's own ``atomic`` works as usual.
Anything it cannot do the same way — an unknown contract, a reprocessed delivery, a model signal receiver,
server-side binding — it leaves to the ORM's path by returning False before writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field, Model
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal

from ..models import Contract, Notification
from ..notifications import ContractEvent

Result = Notification.Result


def apply(delivery: Notification, event: ContractEvent, signal: Signal) -> bool:
    """Apply ``event`` and store ``delivery`` with its result, as ``notifications._apply`` would; False: not here."""
    if not _usable(delivery):
        return False
    from . import notifications as flow  # the rules (duplicate note, checks, moves) are the ORM path's own

    explicit = not connection.in_atomic_block and not signal.has_listeners(Contract)
    with _transaction(explicit) as send:
        rows = send(LOCK + ";" + DUPLICATE, [event.out_contract_code, delivery.notification_id])
        if not rows[0]:
            return False  # not ours yet: the ORM's path creates it (and survives a concurrent creation)
        contract = Contract.from_db(connection.alias, CONTRACT_COLUMNS, rows[0][0])
        delivery.contract = contract
        if rows[1]:
            flow.outcome(delivery, Result.DUPLICATE, note=flow.duplicate_note(rows[1][0][0]))
            _write(send, delivery, None, ())
            return True
        flow.check_matches(contract, event)
        moved = flow.move(contract, event)  # in memory; the writes go out below, in one message
        flow.outcome(delivery, Result.IGNORED if moved.note else Result.APPLIED, note=moved.note)
        _write(send, delivery, contract, moved.fields)
        if moved.signal is not None:  # inside the transaction: a receiver that raises undoes the change
            moved.signal.send(sender=Contract, contract=contract, notification=delivery)
    return True


def insert(delivery: Notification) -> bool:
    """INSERT the delivery's row as ``save()`` would, without the ORM's statement building; False: not here.

    For the deliveries that change nothing (a forgery's rejection, most of all): one autocommit INSERT,
    so a flood of them stays cheap.
    """
    if not _usable(delivery):
        return False
    delivery.make_storable()
    with connection.cursor() as cursor:
        cursor.execute(INSERT, [_value(field, delivery, add=True) for field in NOTIFICATION_FIELDS])
        delivery.pk = cursor.fetchone()[0]
    delivery._state.adding, delivery._state.db = False, connection.alias
    return True


def _usable(delivery: Notification) -> bool:
    if connection.vendor != "postgresql" or not delivery._state.adding:
        return False
    if any(s.has_listeners(model) for s in (pre_save, post_save) for model in (Contract, Notification)):
        return False  # they expect save(); the ORM's path calls it
    try:
        from psycopg import ClientCursor
    except ImportError:  # psycopg2
        return False
    with connection.cursor() as cursor:
        return isinstance(cursor.cursor, ClientCursor)  # server-side binding takes one statement per message


@contextmanager
def _transaction(explicit: bool):
    """Yields ``send(sql, params)``: one message, the rows of each of its statements that returns rows.

    ``explicit``: the transaction's BEGIN rides on the first message and its COMMIT on the last, and a
    failure sends ROLLBACK; otherwise Django's ``atomic`` frames it (a receiver may open its own).
    """
    messages: list[str] = []

    def send(sql: str, params: Sequence[Any], *, last: bool = False) -> list[list[tuple]]:
        if explicit and not messages:
            sql = "BEGIN;" + sql
        if explicit and last:
            sql += ";COMMIT"
        messages.append(sql)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            results = [cursor.fetchall() if cursor.description is not None else None]
            while cursor.nextset():
                results.append(cursor.fetchall() if cursor.description is not None else None)
        return [rows for rows in results if rows is not None]

    if not explicit:
        with transaction.atomic():
            yield send
        return
    try:
        yield send
    finally:
        _end_open_transaction()  # a failure, or it ended without writing (not ours): nothing to keep


def _end_open_transaction() -> None:
    from psycopg.pq import TransactionStatus

    raw = connection.connection
    if raw is not None and not raw.closed and raw.info.transaction_status != TransactionStatus.IDLE:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")


def _write(send, delivery: Notification, contract: Contract | None, fields: Iterable[str]) -> None:
    """The contract's changed columns (if any) and the delivery's row, in one message (with the COMMIT)."""
    statements, params = [], []
    if contract is not None and fields:
        names = sorted(set(fields))
        columns = [cast("Field[Any, Any]", Contract._meta.get_field(name)) for name in names]
        statements.append(
            f"UPDATE {_quote(Contract._meta.db_table)} SET "  # noqa: S608 (names from _meta)
            + ", ".join(f"{_quote(field.column)} = %s" for field in columns)
            + f" WHERE {_quote(Contract._meta.pk.column)} = %s"
        )
        params += [_value(field, contract, add=False) for field in columns] + [contract.pk]
    delivery.make_storable()
    statements.append(INSERT)
    params += [_value(field, delivery, add=True) for field in NOTIFICATION_FIELDS]
    rows = send(";".join(statements), params, last=True)
    delivery.pk = rows[-1][0][0]
    delivery._state.adding, delivery._state.db = False, connection.alias


def _value(field, instance: Model, *, add: bool) -> Any:
    return field.get_db_prep_save(field.pre_save(instance, add), connection)  # auto_now and adapters, as save()


def _quote(name: str | None) -> str:
    return f'"{name}"'  # PostgreSQL's quoting; Django's own names have no quotes in them


def _statements() -> tuple[tuple[str, ...], list, str, str, str]:
    contract_fields = Contract._meta.concrete_fields
    columns = tuple(field.attname for field in contract_fields)
    notification_fields = [field for field in Notification._meta.concrete_fields if not field.primary_key]
    table = _quote(Contract._meta.db_table)
    lock = (
        f"SELECT {', '.join(_quote(field.column) for field in contract_fields)} FROM {table} "  # noqa: S608 (names from _meta)
        f"WHERE {_quote(Contract._meta.get_field('out_contract_code').column)} = %s FOR UPDATE"
    )
    log = _quote(Notification._meta.db_table)
    duplicate = (  # the partial index papay_notif_processed_id
        f'SELECT "id" FROM {log} WHERE "notification_id" = %s AND "verified" AND "processed" ORDER BY "id" LIMIT 1'  # noqa: S608 (names from _meta)
    )
    insert = (
        f"INSERT INTO {log} ({', '.join(_quote(field.column) for field in notification_fields)}) "  # noqa: S608 (names from _meta)
        f"VALUES ({', '.join(['%s'] * len(notification_fields))}) RETURNING {_quote(Notification._meta.pk.column)}"
    )
    return columns, notification_fields, lock, duplicate, insert


CONTRACT_COLUMNS, NOTIFICATION_FIELDS, LOCK, DUPLICATE, INSERT = _statements()

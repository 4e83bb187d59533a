"""The notify store's short way on PostgreSQL: a delivery for a subject we have a row of, in two messages.

The same sequence (the pipeline's, ``services/notifications.py``) and the same statements, in the same
order and with the same guarantees as the ORM store (``notify_store``), whose rules it reuses: the
subject's row locked FOR UPDATE; the duplicate check as its own statement after the lock (under READ
COMMITTED each statement takes a fresh snapshot, so it sees whatever the lock's previous holder committed);
the subject's UPDATE of what the move changed and the delivery's INSERT; one commit. What it saves is
messages and the ORM's statement building: psycopg 3's client-side binding (Django's default) sends several
statements in one message, so

    BEGIN; SELECT … FOR UPDATE; SELECT <duplicate>        then        UPDATE contract; INSERT row; COMMIT

are two round trips instead of six, and a delivery outside any transaction (a rejected one) is one INSERT.
Where the site allows it, a statement a connection sends again is prepared there and sent as ``EXECUTE``
(``notify_prepared``: PostgreSQL then parses and plans it once per connection, not once per delivery).

When a receiver of the signal the move may send is connected, or the caller already holds a transaction,
Django's ``atomic`` frames them instead (its BEGIN and COMMIT, or a savepoint, are then two round trips
more), so a receiver's own ``atomic`` works as usual. ``usable`` says where it cannot write as the ORM would
(a reprocessed delivery, a model signal receiver, server-side binding); for a subject we have no row of,
``lock`` raises ``Fallback`` before writing, and the ORM store does it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import AutoField, BigAutoField, BooleanField, CharField, Field, ForeignKey, Model, TextField
from django.db.models.signals import post_save, pre_save

from ..models import Notification
from . import notify_prepared
from .notify_family import Family
from .notify_prepared import Unprepared
from .notify_store import Fallback, Store


def usable(delivery: Notification, models: Iterable[type[Model]]) -> bool:
    """Whether the short way can store ``delivery`` (and write ``models``' rows) exactly as the ORM would."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or not delivery._state.adding:
        return False
    if any(s.has_listeners(model) for s in (pre_save, post_save) for model in models):
        return False  # they expect save(); the ORM store calls it
    try:
        from psycopg import ClientCursor
    except ImportError:  # psycopg2
        return False
    db.ensure_connection()
    # Server-side binding (OPTIONS {"server_side_binding": True}) takes one statement per message.
    return issubclass(db.connection.cursor_factory, ClientCursor)


class PostgreSQLStore(Store):
    """One delivery's processing, its statements sent several to a message (see the module's docstring)."""

    def __init__(self) -> None:
        # The default database's wrapper itself: ``django.db.connection`` is a proxy that looks it up (a
        # thread-local's) on every attribute, and a delivery reads a dozen of them.
        self._db = connections[DEFAULT_DB_ALIAS]
        self._explicit = False  # this store sends BEGIN and COMMIT, on its first and last messages
        self._open = False  # our BEGIN was sent and no COMMIT of ours has come back: ended on the way out

    @contextmanager
    def atomic(self, *, listened: bool) -> Iterator[None]:
        self._explicit, self._open = not self._db.in_atomic_block and not listened, False
        if not self._explicit:
            with transaction.atomic():
                yield
            return
        try:
            yield
        finally:
            if self._open:  # a failure, or a Fallback before writing: nothing to keep
                _end_open_transaction(self._db)

    def lock(self, family: Family, event: Any, delivery: Notification) -> tuple[Any, int | None]:
        field, value = family.key(event)
        lock, columns = _lock(family.model, field)
        rows = self._send([lock, DUPLICATE], [value, delivery.notification_id])
        if not rows[0]:
            raise Fallback  # not ours yet: the family creates it there (and survives a concurrent creation)
        subject = family.model.from_db(self._db.alias, columns, _converted(family.model, rows[0][0], self._db))
        return subject, (rows[1][0][0] if rows[1] else None)

    def write(self, delivery: Notification, subject: Model | None = None, fields: Iterable[str] = ()) -> None:
        """The subject's changed columns (if any) and the delivery's row, in one message (with the COMMIT)."""
        statements, params = [], []
        names = sorted(set(fields))
        if subject is not None and names:
            meta = subject._meta
            columns = [cast("Field[Any, Any]", meta.get_field(name)) for name in names]
            statements.append(
                f"UPDATE {_quote(meta.db_table)} SET "  # noqa: S608 (names from _meta)
                + ", ".join(f"{_quote(field.column)} = %s" for field in columns)
                + f" WHERE {_quote(meta.pk.column)} = %s"
            )
            params += [_value(field, subject, self._db, add=False) for field in columns] + [subject.pk]
        delivery.make_storable()
        statements.append(INSERT)
        params += [_value(field, delivery, self._db, add=True) for field in NOTIFICATION_FIELDS]
        rows = self._send(statements, params, last=True)
        delivery.pk = rows[-1][0][0]
        delivery._state.adding, delivery._state.db = False, self._db.alias

    def save(self, delivery: Notification, *, durable: bool = True) -> None:
        """INSERT the delivery's row as ``save()`` would, without the ORM's statement building: for the
        deliveries that change nothing (a forgery's rejection, most of all) one autocommit INSERT, so a
        flood of them stays cheap.

        ``durable=False`` — a delivery whose signature did not verify — commits it without waiting for the
        write-ahead log to reach the disk (``SET LOCAL synchronous_commit TO OFF``, in the same message): a
        forger's flood then costs no disk flush per row. What that risks: should PostgreSQL crash within
        a fraction of a second (three times its ``wal_writer_delay`` at most), the last such rows are
        missing from the log; nothing else is, since a verified delivery and every change it makes commit
        as usual, and each of those rows answered 401, which WeChat Pay would deliver again anyway. Inside
        the caller's transaction the row is written as usual: the setting would cover that whole transaction.
        """
        delivery.make_storable()
        values = [_value(field, delivery, self._db, add=True) for field in NOTIFICATION_FIELDS]
        unflushed = not durable and not self._db.in_atomic_block
        try:
            if unflushed:
                with self.atomic(listened=False):  # our BEGIN and COMMIT, on this one message
                    # The setting cannot be prepared; it rides first, before the (maybe prepared) INSERT.
                    delivery.pk = self._send([INSERT], values, last=True, first=UNFLUSHED)[0][0][0]
            else:
                with notify_prepared.lost_statements(), self._db.cursor() as cursor:
                    cursor.execute(notify_prepared.text(INSERT, self._db), values)
                    delivery.pk = cursor.fetchone()[0]
        except Unprepared:
            if self._db.in_atomic_block:  # the caller's transaction is aborted: WeChat Pay delivers again
                raise
            Store().save(delivery)  # an autocommit INSERT: nothing was written
            return
        delivery._state.adding, delivery._state.db = False, self._db.alias

    def _send(
        self, statements: Sequence[str], params: Sequence[Any], *, last: bool = False, first: str = ""
    ) -> list[list[tuple]]:
        """One message of ``statements`` (each prepared once the connection sends it again, ``notify_prepared``);
        the rows of each that returns rows. In an explicit transaction the BEGIN rides on the first message and
        the COMMIT on the last. ``first``: a statement without values, sent as it is, before them."""
        from psycopg.pq import ExecStatus

        sql = ";".join(notify_prepared.text(statement, self._db) for statement in statements)
        if first:
            sql = f"{first};{sql}"
        if self._explicit and not self._open:
            sql, self._open = "BEGIN;" + sql, True
        if self._explicit and last:
            sql += ";COMMIT"
        results = []
        with notify_prepared.lost_statements(), self._db.cursor() as cursor:
            cursor.execute(sql, params)
            if self._explicit and last:
                self._open = False  # committed
            raw = cursor.cursor  # psycopg's: its result's status says whether rows came, without building columns
            while True:
                if raw.pgresult is not None and raw.pgresult.status == ExecStatus.TUPLES_OK:
                    results.append(raw.fetchall())
                if not raw.nextset():
                    break
        return results


def _end_open_transaction(db: BaseDatabaseWrapper) -> None:
    from psycopg.pq import TransactionStatus

    raw = db.connection
    if raw is not None and not raw.closed and raw.info.transaction_status != TransactionStatus.IDLE:
        with db.cursor() as cursor:
            cursor.execute("ROLLBACK")


def _value(field, instance: Model, db: BaseDatabaseWrapper, *, add: bool) -> Any:
    """The column's value as ``save()`` writes it: auto_now and the field's adapters (JSON, addresses, times).

    A text, boolean or key column holding a plain value (a str, bool, int or None) is written as it is: their
    preparation returns such a value unchanged, and it is most of a delivery's row (done alike it cost the
    rejected flood a tenth of its time).
    """
    if _plain(field):
        value = getattr(instance, field.attname)
        if value is None or type(value) in (str, bool, int):
            return value
    return field.get_db_prep_save(field.pre_save(instance, add), db)


# Fields whose preparation leaves a plain value as it is (subclasses may not: only these exact types).
_PLAIN_FIELDS = frozenset({CharField, TextField, BooleanField, AutoField, BigAutoField})


@cache
def _plain(field: Field[Any, Any]) -> bool:
    """One of ``_PLAIN_FIELDS``, or a foreign key to one (a key is prepared as its target is)."""
    target = field.target_field if type(field) is ForeignKey else field
    return type(target) in _PLAIN_FIELDS


def _quote(name: str | None) -> str:
    return f'"{name}"'  # PostgreSQL's quoting; Django's own names have no quotes in them


def _converted(model: type[Model], row: Sequence[Any], db: BaseDatabaseWrapper) -> Sequence[Any]:
    """The row's values as the ORM's read gives them: the converters of the fields that have one applied (a
    JSONField's JSON is text until then, and written back as text it would be stored as a JSON string)."""
    converters = _converters(model)
    if not converters:
        return row
    values = list(row)
    for index, field_converters, column in converters:
        for converter in field_converters:
            values[index] = converter(values[index], column, db)
    return values


@cache
def _converters(model: type[Model]) -> list[tuple[int, list, Any]]:
    """Per column of ``model`` that has any: its position, its fields' database converters and its column."""
    found = []
    for index, field in enumerate(cast("list[Field[Any, Any]]", model._meta.concrete_fields)):
        converters = field.get_db_converters(connections[DEFAULT_DB_ALIAS])
        if converters:
            found.append((index, converters, field.get_col(model._meta.db_table)))
    return found


@cache
def _lock(model: type[Model], field: str) -> tuple[str, tuple[str, ...]]:
    """SELECT … FOR UPDATE of ``model``'s row by its unique ``field``, and the attnames of its columns."""
    fields = model._meta.concrete_fields
    lock = (
        f"SELECT {', '.join(_quote(f.column) for f in fields)} FROM {_quote(model._meta.db_table)} "  # noqa: S608 (names from _meta)
        f"WHERE {_quote(cast('Field[Any, Any]', model._meta.get_field(field)).column)} = %s FOR UPDATE"
    )
    return lock, tuple(f.attname for f in fields)


def _statements() -> tuple[list, str, str]:
    notification_fields = [field for field in Notification._meta.concrete_fields if not field.primary_key]
    log = _quote(Notification._meta.db_table)
    duplicate = (  # the partial index papay_notif_processed_id
        f'SELECT "id" FROM {log} WHERE "notification_id" = %s AND "verified" AND "processed" ORDER BY "id" LIMIT 1'  # noqa: S608 (names from _meta)
    )
    insert = (
        f"INSERT INTO {log} ({', '.join(_quote(field.column) for field in notification_fields)}) "  # noqa: S608 (names from _meta)
        f"VALUES ({', '.join(['%s'] * len(notification_fields))}) RETURNING {_quote(Notification._meta.pk.column)}"
    )
    return notification_fields, duplicate, insert


NOTIFICATION_FIELDS, DUPLICATE, INSERT = _statements()
# For this transaction only: COMMIT returns without waiting for the log's flush (PostgreSQL's own default
# for the setting stays as the site has it).
UNFLUSHED = "SET LOCAL synchronous_commit TO OFF"

"""Prepared statements for the notify store's short way: each statement parsed and planned once per connection.

Every delivery sends the same few statements (the subject's lock, the duplicate check, the subject's UPDATE of
what a move changes, the delivery's INSERT). Planned afresh each time, they were a third of PostgreSQL's work
for a delivery (a SIGN's statements, timed on their own: 487 µs of PostgreSQL CPU planned each time, 320 µs
prepared; ``benchmarks/notify_throughput.py`` gained 0.48× → 0.56× the bare view by it). The short way sends
several statements in one simple-protocol message (``notify_postgresql``), which protocol-level prepared
statements cannot ride, so these are SQL-level: ``PREPARE papay_… AS …`` once, then ``EXECUTE papay_…(…)`` in
the message, with the same client-side bound values.

Opt-in, as Django has it: Django opens PostgreSQL connections with psycopg's ``prepare_threshold`` None, to keep
connection poolers in transaction mode working (a statement prepared through one of their server connections is
missing on the next). A site with no such pooler says so with ``DATABASES[…]["OPTIONS"] = {"prepare_threshold":
5}`` (any number; Django's own queries are not prepared while it binds client-side, its default). Then a
statement is prepared the second time a connection sends it, in a message of its own, so a connection opened for
one request (``CONN_MAX_AGE = 0``) prepares nothing. Should PostgreSQL still answer that one of ours does not
exist, or exists already (a pooler after all, a ``DISCARD ALL``), ``Unprepared`` is raised: the transaction is
rolled back, the ORM store does that delivery, and this process prepares no more.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

from .notify_store import Fallback

logger = logging.getLogger("django_papay.notifications")

PREPARE_ON_USE = 2  # the use of a statement, on one connection, that prepares it
# PostgreSQL's answers when a prepared statement is not where we left it: invalid_sql_statement_name,
# duplicate_prepared_statement.
LOST = frozenset({"26000", "42P05"})

_uses: WeakKeyDictionary[Any, dict[str, int]] = WeakKeyDictionary()  # per psycopg connection: sql → uses
_enabled = True


class Unprepared(Fallback):
    """A prepared statement of ours was not on the connection (a pooler between us and PostgreSQL): the
    transaction rolled back, so nothing was written; the ORM store does the delivery, and this process
    prepares no more."""


def text(sql: str, db: BaseDatabaseWrapper = connection) -> str:
    """What to send for ``sql`` (its values as ``%s``) on ``db``: ``EXECUTE`` of its prepared statement once it
    has one, else ``sql`` itself; on its ``PREPARE_ON_USE``-th use, prepared first (a message)."""
    raw = db.connection
    if not _enabled or raw is None or getattr(raw, "prepare_threshold", None) is None:
        return sql
    uses = _uses.setdefault(raw, {})
    count = uses[sql] = uses.get(sql, 0) + 1
    if count < PREPARE_ON_USE:
        return sql
    if count == PREPARE_ON_USE:
        with lost_statements(), db.cursor() as cursor:
            cursor.execute(f"PREPARE {_name(sql)} AS {_numbered(sql)}")
    return _execute(sql)


@contextmanager
def lost_statements() -> Iterator[None]:
    """Turns PostgreSQL's "no such prepared statement" / "already exists" into ``Unprepared``, and stops preparing."""
    global _enabled
    try:
        yield
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) not in LOST:
            raise
        _enabled = False
        logger.warning(
            "PostgreSQL lost a prepared statement of the notify store (%s): a pooler in transaction mode? "
            "This process no longer prepares them; remove OPTIONS' prepare_threshold to say so.",
            error,
        )
        raise Unprepared from error


@cache
def _name(sql: str) -> str:
    return "papay_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:16]


@cache
def _execute(sql: str) -> str:
    """``EXECUTE`` of ``sql``'s prepared statement, its values as ``%s`` again (bound client-side, as ``sql``'s)."""
    count = sql.count("%s")
    return f"EXECUTE {_name(sql)}({', '.join(['%s'] * count)})" if count else f"EXECUTE {_name(sql)}"


@cache
def _numbered(sql: str) -> str:
    """``%s`` placeholders as ``$1``, ``$2``…: the statement's parameters, typed by where they stand."""
    parts: Sequence[str] = sql.split("%s")
    return "".join(part + (f"${index}" if index < len(parts) else "") for index, part in enumerate(parts, 1))

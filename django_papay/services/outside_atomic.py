"""Calls that move money run outside any transaction: what they store must commit before WeChat Pay is called.

A deduction is committed, then sent (``deductions``); settling and reversing store each answer as it comes
(``settlement``). Inside ``transaction.atomic()`` — the caller's own block, or a view under
``ATOMIC_REQUESTS`` — none of it commits until the block does, and a rollback after WeChat Pay took the money
(a receiver or a later statement raising, the worker killed mid-request) erases the only record of the
charge: ``papay_settle`` then has nothing to ask about, and the user paid for nothing we know of. So those
calls refuse to start there (``InsideAtomicBlock``), before anything is stored or sent.

A test case's own blocks are let through (Django's ``TestCase``, pytest-django's ``django_db``): Django marks
them ``_from_testcase``, the rule ``transaction.atomic(durable=True)`` follows too.
"""

from __future__ import annotations

from django.db import transaction

from ..exceptions import InsideAtomicBlock


def require_outside_atomic(call: str) -> None:
    """Raise ``InsideAtomicBlock`` naming ``call`` unless what it stores now commits at once."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
            raise InsideAtomicBlock(call)
    elif not connection.get_autocommit():  # transaction.set_autocommit(False): nothing commits either
        raise InsideAtomicBlock(call)

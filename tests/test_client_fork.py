"""The API client after a fork: gunicorn --preload and multiprocessing fork a process that may have
used the client already; the child must not share the parent's keep-alive sockets, or each would read answers
meant for the other. Over real HTTP to the loopback sandbox, from a real ``os.fork()``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable

import pytest

from django_papay.exceptions import WeChatPayError
from django_papay.models import Contract
from django_papay.services.connections import get_client
from django_papay.services.contracts import contract_path
from django_papay.services.operations import check_answer

from .helpers import signed_contracts

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)"),
]

ROUNDS = 20


def ask_about(contract: Contract) -> list[str]:
    """Query ``contract`` ROUNDS times with the process's client (no database): "ok" for each answer about it,
    else the error's code (ANSWER_MISMATCH when the answer was about another contract)."""
    results = []
    for _ in range(ROUNDS):
        try:
            check_answer(get_client().get(contract_path(contract)), contract)
        except WeChatPayError as exc:
            results.append(exc.code)
        else:
            results.append("ok")
    return results


def in_a_forked_child(before: Callable[[], dict], during: Callable[[], list], start_fd: int) -> tuple[int, int]:
    """Fork; the child runs ``before()``, waits for a byte on ``start_fd``, runs ``during()`` and writes both as
    JSON to a pipe. Returns the pipe's read end and the child's pid. The child always leaves with ``os._exit``,
    never through pytest."""
    report_read, report_write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python ≥ 3.12 warns about forking with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.close(report_read)
            report = before()
            os.read(start_fd, 1)
            report["answers"] = during()
            os.write(report_write, json.dumps(report).encode())
            status = 0
        except BaseException as exc:  # reported to the parent, which fails the test
            os.write(report_write, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(status)
    os.close(report_write)
    return report_read, pid


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_a_forked_child_gets_its_own_session_and_each_process_its_own_answers(papay, sandbox):
    mine, theirs = signed_contracts(sandbox, 2)
    session = get_client().session  # used: its pool holds a keep-alive connection to the sandbox
    pool = session.get_adapter(papay["BASE_URL"]).poolmanager
    start_read, start_write = os.pipe()

    def child_client() -> dict:
        child = get_client().session
        return {"same_session": child is session, "same_pool": child.get_adapter(papay["BASE_URL"]).poolmanager is pool}

    report_fd, pid = in_a_forked_child(child_client, lambda: ask_about(theirs), start_read)
    os.write(start_write, b"go")  # parent and child query at the same time
    answers = ask_about(mine)
    report = json.loads(read_all(report_fd))
    _pid, status = os.waitpid(pid, 0)
    os.close(start_read)
    os.close(start_write)

    assert "error" not in report, report.get("error")
    assert os.waitstatus_to_exitcode(status) == 0
    assert report["same_session"] is False and report["same_pool"] is False
    assert answers == ["ok"] * ROUNDS
    assert report["answers"] == ["ok"] * ROUNDS
    assert get_client().session is session  # the parent keeps its own connections

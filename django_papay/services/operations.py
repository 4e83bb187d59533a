"""How every WeChat Pay call runs, alone or in bulk: contract operations (``run``, ``run_many``) and any
prepared calls (``send_all``, which the deduction services use).

    prepare  (calling thread) validate and check the state, no network: ValidationError/ContractStateError
    send     (any thread)     the signed HTTP call only, no database
    complete (calling thread) record the error, or verify the answer's signature, check it and apply it
                              under a row lock

Keeping the database out of the sending threads is what lets a bulk action keep several calls in
flight while its writes stay plain, serial Django writes (under ATOMIC_REQUESTS, in tests, on SQLite).
It holds with platform certificates too, which live in the database: ``run_many`` runs a refresh that
is due in the calling thread before any thread starts, and gives the threads a snapshot of the keys
(``KeyStore.snapshot``), read from memory, for the error answers they verify (one signed by a serial the
snapshot lacks is refused as unknown: InvalidResponseError, retryable). A 2xx answer is verified
in ``complete``, in the calling thread, with the client's own key store: an answer signed with a
certificate first seen there (a rotation) makes that store download the new set there, once.

Every call takes its place under ``PAPAY["MAX_CALLS_PER_SECOND"]`` here, just before it is sent, in the
calling thread (``ratelimit.take_places``): alone, or in bulk as a sending thread comes free for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import conf
from ..client import Answer, KeyStore, RawAnswer, WeChatPayClient
from ..exceptions import ContractStateError, InvalidResponseError, WeChatPayError
from ..models import Contract
from ..stored_messages import error_columns
from . import ratelimit
from .connections import get_client

logger = logging.getLogger("django_papay.services")

FINAL_STATES = (Contract.Status.SIGNED, Contract.Status.TERMINATED)


@dataclass(frozen=True)
class Call:
    """One prepared request; ``prepared_at`` is before it was sent (pre-sign sessions count from it)."""

    method: str
    path: str
    payload: dict[str, Any] | None = None
    prepared_at: datetime = field(default_factory=timezone.now)
    timeout: tuple[float, float] | None = None  # (connect, read); None: PAPAY["TIMEOUT"]
    wechatpay_serial: str | None = None  # the key a sensitive field is encrypted under (Wechatpay-Serial)


@dataclass(frozen=True)
class Operation:
    """One WeChat Pay call about a contract: ``prepare`` builds the Call, ``apply`` stores what the answer says."""

    prepare: Callable[[Contract], Call]
    apply: Callable[[Contract, Call, Answer], None]
    # Only a pre-sign error that retrying cannot fix makes the contract FAILED; a failed query or
    # terminate says nothing about the contract itself.
    fails_contract: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a bulk run did to one contract: ``error`` is None on success."""

    contract: Contract
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run(operation: Operation, contract: Contract) -> Contract:
    """Prepare, send and complete ``operation`` for one contract; errors are recorded and re-raised."""
    call = operation.prepare(contract)
    client = get_client()
    ratelimit.take_places(1)
    return _complete(operation, contract, call, client, _send(client, call))


def run_many(operation: Operation, contracts: Sequence[Contract], *, concurrency: int | None = None) -> list[Outcome]:
    """``run`` for each contract with at most ``concurrency`` calls in flight (PAPAY["BULK_CONCURRENCY"]).

    Never raises for one contract's failure: each Outcome carries its error (also recorded on the
    contract as ``run`` does). Outcomes come back in the order of ``contracts``.
    """
    outcomes: dict[int, Outcome] = {}
    prepared: list[tuple[int, Contract, Call]] = []
    for index, contract in enumerate(contracts):
        try:
            prepared.append((index, contract, operation.prepare(contract)))
        except (ValidationError, ContractStateError) as exc:
            outcomes[index] = Outcome(contract, exc)
    if prepared:
        client = get_client()
        keys = client.keys.snapshot()  # here, not in the threads: a refresh that is due reads and writes the database
        calls = [call for _index, _contract, call in prepared]
        for position, result in _in_flight(client, calls, keys, concurrency):
            index, contract, call = prepared[position]
            try:
                _complete(operation, contract, call, client, result)
            except (WeChatPayError, ContractStateError) as exc:
                outcomes[index] = Outcome(contract, exc)
            else:
                outcomes[index] = Outcome(contract)
    return [outcomes[index] for index in range(len(contracts))]


def send_all(calls: Sequence[Call], *, concurrency: int | None = None) -> list[Answer | WeChatPayError]:
    """Each call's verified answer or its error, in the order given, with at most ``concurrency`` in flight.

    As in ``run_many``, the threads only send; the answers are verified here, in the calling thread, which
    then applies them.
    """
    client = get_client()
    if len(calls) <= 1:
        ratelimit.take_places(len(calls))
        raws = [_send(client, call) for call in calls]
    else:
        arrived = dict(_in_flight(client, calls, client.keys.snapshot(), concurrency))
        raws = [arrived[index] for index in range(len(calls))]
    return [_accepted(client, raw) for raw in raws]


def _in_flight(
    client: WeChatPayClient, calls: Sequence[Call], keys: KeyStore, concurrency: int | None
) -> Iterator[tuple[int, RawAnswer | WeChatPayError]]:
    """Send ``calls`` from threads, at most ``concurrency`` in flight; yields each call's index and result as
    it arrives, in the calling thread.

    Each call's place under MAX_CALLS_PER_SECOND is taken here, in the calling thread, when a thread is free
    to send it at once: a call queued behind others would be sent in a later second than it was counted in.
    """
    workers = min(concurrency or conf.bulk_concurrency(), len(calls))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="papay") as pool:
        pending: dict[Future[RawAnswer | WeChatPayError], int] = {}
        for index, call in enumerate(calls):
            while len(pending) >= workers:
                done, _still = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
            ratelimit.take_places(1)
            pending[pool.submit(_send, client, call, keys)] = index
        for future in as_completed(list(pending)):
            yield pending.pop(future), future.result()


def _accepted(client: WeChatPayClient, raw: RawAnswer | WeChatPayError) -> Answer | WeChatPayError:
    if isinstance(raw, WeChatPayError):
        return raw
    try:
        return client.accept(raw)
    except WeChatPayError as exc:
        return exc


def _send(client: WeChatPayClient, call: Call, keys: KeyStore | None = None) -> RawAnswer | WeChatPayError:
    """The HTTP call: a 2xx answer not yet verified, or the error (a signed error answer verified with ``keys``)."""
    try:
        return client.send(
            call.method,
            call.path,
            call.payload,
            keys=keys,
            timeout=call.timeout,
            wechatpay_serial=call.wechatpay_serial,
        )
    except WeChatPayError as exc:
        return exc


def _complete(
    operation: Operation, contract: Contract, call: Call, client: WeChatPayClient, result: RawAnswer | WeChatPayError
) -> Contract:
    try:
        if isinstance(result, WeChatPayError):
            raise result
        answer = client.accept(result)  # the signature first: nothing unverified is read or stored
        operation.apply(contract, call, answer)  # checks the answer is this contract's before it writes anything
    except WeChatPayError as exc:
        record_failure(contract, exc, fail=operation.fails_contract)
        raise
    return contract


def record_failure(contract: Contract, exc: WeChatPayError, *, fail: bool = False) -> None:
    """Store the error where staff read it; with ``fail``, mark the contract FAILED unless retrying can help."""
    Contract.objects.filter(pk=contract.pk).update(**error_columns(exc), updated_at=timezone.now())
    if fail and not exc.retryable:
        # Conditional: never overwrite a contract that a notification has signed meanwhile.
        Contract.objects.filter(pk=contract.pk).exclude(status__in=FINAL_STATES).update(status=Contract.Status.FAILED)
    contract.refresh_from_db(fields=["status", "last_error", "last_error_message", "updated_at"])
    logger.warning("contract %s: %s", contract.out_contract_code, exc)


def check_answer(answer: Answer, contract: Contract, *, expect_id: str = "") -> None:
    """The answer must be about this contract (out_contract_code, plan_id) and this merchant (mchid)."""
    data = answer.data
    problems = []
    if expect_id and not (isinstance(data.get(expect_id), str) and 0 < len(data[expect_id]) <= 128):
        problems.append(expect_id)
    if data.get("out_contract_code") != contract.out_contract_code:
        problems.append("out_contract_code")
    if data.get("plan_id") != contract.plan_id or isinstance(data.get("plan_id"), bool):
        problems.append("plan_id")
    if "mchid" in data and str(data["mchid"]) != conf.mchid():
        problems.append("mchid")
    if problems:
        raise mismatch(answer, "this contract", problems)


def mismatch(answer: Answer, subject: str, problems: list[str]) -> InvalidResponseError:
    """A verified answer about something else (``problems`` names the fields): as good as no answer."""
    return InvalidResponseError(
        f"the answer does not match {subject} ({', '.join(problems)})",
        code="ANSWER_MISMATCH",
        status=answer.status,
        request_id=answer.request_id,
    )

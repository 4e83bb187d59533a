"""Deduct: charge a signed contract (合单代扣 免密支付), exactly once, and never call an unknown outcome failed.

WeChat Pay's deduct is synchronous, with no notification: its answer is the result (spec, "Deductions").
Money moves here, so:

1. everything is validated before anything is stored or sent (ValidationError, ContractStateError);
2. the deduction and its numbers are committed before the call;
3. only whoever claims the row sends it: CREATED → PROCESSING in one conditional UPDATE. The same
   ``combine_out_trade_no`` again, or a second caller racing on it, finds the row claimed and sends nothing;
4. no answer, an answer that does not verify or is not about this charge, a 429 or a 5xx leave it PROCESSING
   with the error recorded — the charge may have happened — and it is never sent again: ``settle`` asks
   WeChat Pay (see ``settlement``). Only a refusal that WeChat Pay signed makes it FAILED.

``deduct`` and ``send`` refuse to run inside ``transaction.atomic()`` or under ATOMIC_REQUESTS
(``InsideAtomicBlock``, see ``outside_atomic``): step 2 must really commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import conf, wechatpay
from ..exceptions import ContractStateError, WeChatPayError
from ..models import BillingRun, Contract, Deduction, SubOrder, new_trade_no
from ..stored_messages import Message
from . import ratelimit
from .connections import get_client
from .contracts import query
from .deduction_input import OPTIONAL_KEYS, REQUIRED_KEYS, clean_charge, clean_sub_orders, why_not_chargeable
from .deduction_records import apply_answer, finish, record_error
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .turns import in_turn

logger = logging.getLogger("django_papay.deductions")

# A refusal that says nothing about this charge's money: WeChat Pay did not take the request.
UNKNOWN_STATUSES = frozenset({429})
# Added to a deduct call's timeouts: hosts' clocks differ a little, and the answer takes a moment to store.
IN_FLIGHT_MARGIN = timedelta(seconds=5)


def deduct(
    contract: Contract,
    sub_orders: Sequence[Mapping[str, Any]],
    *,
    combine_out_trade_no: str | None = None,
    risk_info: str = "",
    combine_appid: str | None = None,
) -> Deduction:
    """Charge ``contract`` for ``sub_orders`` (amounts in integer fen) and return the Deduction.

    Raises only when nothing was sent: ValidationError for bad input (or a ``combine_out_trade_no`` already
    used for a different charge), ContractStateError when the contract is not signed, WeChatPayError when
    the contract had no ``contract_id`` and WeChat Pay could not be asked for it. Whatever WeChat Pay answers,
    the deduction comes back with its status: SUCCEEDED, FAILED, or PROCESSING (settle it later); and
    InsideAtomicBlock, before anything is stored, when called inside ``transaction.atomic()``.
    """
    require_outside_atomic("deduct")
    return send(
        store(
            contract,
            sub_orders,
            combine_out_trade_no=combine_out_trade_no,
            risk_info=risk_info,
            combine_appid=combine_appid,
        )
    )


def store(
    contract: Contract,
    sub_orders: Sequence[Mapping[str, Any]],
    *,
    combine_out_trade_no: str | None = None,
    risk_info: str = "",
    combine_appid: str | None = None,
    billing_run: BillingRun | None = None,
) -> Deduction:
    """Validate the charge and commit it, CREATED, without sending it (the first half of ``deduct``).

    The same ``combine_out_trade_no`` for the same charge returns the deduction stored before, whatever its
    status. Raises as ``deduct`` does when nothing was sent.
    """
    if not isinstance(contract, Contract) or contract.pk is None:
        raise ValidationError({"contract": _("Give a saved Contract to charge.")})
    cleaned = clean_sub_orders(sub_orders)
    # Checked before the number is looked up: a NUL in a query is a raw DataError on PostgreSQL.
    number, risk_info, combine_appid = clean_charge(combine_out_trade_no, risk_info, combine_appid)
    existing = in_turn(lambda: _same_charge(number, contract, cleaned, risk_info, combine_appid)) if number else None
    if existing is None:
        contract = _signed_with_contract_id(contract)
        existing = in_turn(lambda: _create(contract, cleaned, number, risk_info, combine_appid, billing_run))
    return existing


def send(deduction: Deduction) -> Deduction:
    """Send a CREATED deduction if we win its claim; otherwise return it as it is (someone else sent it).

    Never raises once the call is made: whatever happens to the answer, the deduction is returned with it.
    Raises InsideAtomicBlock, sending nothing, inside ``transaction.atomic()``.
    """
    require_outside_atomic("send")
    # The rate limit's wait comes before the claim: the call then follows it at once, within reachable_until.
    with ratelimit.place_ahead():
        if not in_turn(lambda: _claim(deduction)):
            logger.info("deduction %s is %s already; not sent again", deduction, deduction.status)
            return deduction
        call = Call("POST", wechatpay.DEDUCT_PATH, payload(deduction), timeout=deduct_call_timeout())
        (result,) = send_all([call])
    in_turn(lambda: _call_ended(deduction))
    try:
        if isinstance(result, WeChatPayError):
            raise result
        apply_answer(deduction, result)
    except WeChatPayError as exc:
        refused(deduction, exc)
    except DatabaseError as exc:
        # The money may have moved: never raise now. It stays PROCESSING and settle asks WeChat Pay again.
        logger.exception("deduction %s: WeChat Pay's answer could not be stored", deduction)
        record_error(deduction, Message(gettext_noop("WeChat Pay's answer could not be stored: %(error)s"), error=exc))
    return deduction


def deduct_call_timeout() -> tuple[float, float]:
    """``(connect, read)`` seconds for the deduct call: WeChat Pay answers it within its one minute."""
    connect, _read = get_client().config.timeout
    return connect, conf.deduct_timeout()


def reachable_until(deduction: Deduction) -> datetime | None:
    """Until when the deduct call may still reach WeChat Pay (None: never sent).

    Stored when it is sent (its timeouts, plus a margin for clocks and for the answer being stored) and
    moved to the moment the call ended once it did; rows sent before it was stored count from ``sent_at``
    with today's timeouts. A call still open is never concluded "not received".
    """
    if deduction.reachable_until is not None:
        return deduction.reachable_until
    return None if deduction.sent_at is None else deduction.sent_at + _in_flight()


def _in_flight() -> timedelta:
    connect, read = deduct_call_timeout()
    return timedelta(seconds=connect + read) + IN_FLIGHT_MARGIN


def _claim(deduction: Deduction) -> bool:
    """CREATED → PROCESSING in one conditional UPDATE: whoever changes the row sends it, nobody else."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Deduction.objects.filter(pk=deduction.pk, status=Deduction.Status.CREATED).update(
            status=Deduction.Status.PROCESSING, sent_at=now, reachable_until=now + _in_flight(), updated_at=now
        )
    deduction.refresh_from_db()
    return bool(claimed)


def _call_ended(deduction: Deduction) -> None:
    """The call returned or gave up: from now on WeChat Pay cannot receive it any more."""
    now = timezone.now()
    with transaction.atomic():
        Deduction.objects.filter(pk=deduction.pk, reachable_until__gt=now).update(reachable_until=now)
    deduction.refresh_from_db(fields=["reachable_until"])


def refused(deduction: Deduction, exc: WeChatPayError) -> None:
    """Record a failed deduct call: FAILED only for WeChat Pay's signed refusal, otherwise still PROCESSING."""
    if is_refusal(exc):
        finish(deduction, Deduction.Status.FAILED, error=exc)
        if exc.code == wechatpay.CONTRACT_NOT_EXIST:
            _requery_contract(deduction.contract)
    else:
        record_error(deduction, exc)
    logger.warning("deduction %s: %s", deduction, exc)


def is_refusal(exc: WeChatPayError) -> bool:
    """True when WeChat Pay surely did not charge: a 4xx other than 429, carrying a valid signature.

    An unsigned error answer may come from a gateway or anyone in between, and a 429 or 5xx says nothing
    about whether the charge happened; those stay unknown, to be settled by a query.
    """
    return (
        exc.verified
        and exc.status is not None
        and 400 <= exc.status < 500
        and exc.status not in UNKNOWN_STATUSES
        and not exc.retryable
    )


def payload(deduction: Deduction) -> dict[str, Any]:
    """The deduct request body, from what was stored."""
    body: dict[str, Any] = {
        "combine_appid": deduction.combine_appid,
        "combine_mchid": deduction.combine_mchid,
        "combine_out_trade_no": deduction.combine_out_trade_no,
        "contract_id": deduction.contract.contract_id,
        "sub_orders": [_sub_order_payload(sub_order) for sub_order in deduction.sub_orders.all()],
    }
    if deduction.risk_info:
        body["risk_info"] = deduction.risk_info
    return body


def _sub_order_payload(sub_order: SubOrder) -> dict[str, Any]:
    item: dict[str, Any] = {"mchid": sub_order.mchid, "sub_mchid": sub_order.sub_mchid}
    if sub_order.sub_appid:
        item["sub_appid"] = sub_order.sub_appid
    item["out_trade_no"] = sub_order.out_trade_no
    item["description"] = sub_order.description
    if sub_order.attach:
        item["attach"] = sub_order.attach
    item["amount"] = {"total_amount": sub_order.amount, "currency": sub_order.currency}
    settle_info = {
        name: value
        for name, value in (("profit_sharing", sub_order.profit_sharing), ("subsidy_amount", sub_order.subsidy_amount))
        if value is not None
    }
    if settle_info:
        item["settle_info"] = settle_info
    if sub_order.sub_risk_info:
        item["sub_risk_info"] = sub_order.sub_risk_info
    return item


def _signed_with_contract_id(contract: Contract) -> Contract:
    """The contract, signed and with its WeChat Pay contract_id (queried when the SIGN report lacked it)."""
    if contract.status == Contract.Status.SIGNED and not contract.contract_id:
        query(contract)  # a WeChatPayError here means nothing was sent for the charge
    problem = why_not_chargeable(contract)
    if problem:
        raise ContractStateError(str(problem))
    if not contract.contract_id:
        raise ContractStateError(
            _("WeChat Pay gave no contract_id for contract %(code)s; it cannot be charged yet.")
            % {"code": contract.out_contract_code}
        )
    return contract


def _combine_appid(contract: Contract, combine_appid: str | None) -> str:
    return combine_appid or conf.combine_appid() or contract.appid or conf.appid()


def unsaved(
    contract: Contract,
    number: str | None,
    risk_info: str,
    combine_appid: str | None,
    billing_run: BillingRun | None = None,
) -> Deduction:
    """The deduction to store for a cleaned charge, validated, not saved (``_create``, and runs in batches)."""
    deduction = Deduction(
        contract=contract,
        billing_run=billing_run,
        risk_info=risk_info,
        combine_mchid=conf.mchid(),
        combine_appid=_combine_appid(contract, combine_appid),
    )
    if number:
        deduction.combine_out_trade_no = number
    deduction.full_clean(exclude=["contract", "billing_run"], validate_unique=False)
    return deduction


def _create(
    contract: Contract,
    sub_orders: list[SubOrder],
    number: str | None,
    risk_info: str,
    combine_appid: str | None,
    billing_run: BillingRun | None = None,
) -> Deduction:
    deduction = unsaved(contract, number, risk_info, combine_appid, billing_run)
    try:
        with transaction.atomic():
            deduction.save()
            for sub_order in sub_orders:
                sub_order.deduction = deduction
                sub_order.out_trade_no = sub_order.out_trade_no or new_trade_no()
            SubOrder.objects.bulk_create(sub_orders)
    except IntegrityError:
        # A racing caller stored the same combine_out_trade_no first; or an out_trade_no is taken.
        existing = _same_charge(number, contract, sub_orders, risk_info, combine_appid) if number else None
        if existing is None:
            raise ValidationError({"sub_orders": _("An out_trade_no of these sub-orders is already used.")}) from None
        return existing
    return deduction


# Every field of a sub-order the caller gives (the input rules' keys, so a new one is compared too);
# out_trade_no is compared apart (left blank, it was generated).
CHARGE_FIELDS = tuple(key for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS) if key != "out_trade_no")


def _same_charge(
    number: str, contract: Contract, sub_orders: list[SubOrder], risk_info: str, combine_appid: str | None
) -> Deduction | None:
    """The deduction stored under ``number``, if it is the very same charge; ValidationError if it is another.

    Every field counts: the same number with another attach, subsidy or AppID is another charge, and
    answering it with the old deduction would tell the caller that charge was made.
    """
    existing = Deduction.objects.filter(combine_out_trade_no=number).first()
    if existing is None:
        return None
    stored = list(existing.sub_orders.all())
    same = (
        existing.contract_id == contract.pk
        and existing.risk_info == risk_info
        and existing.combine_appid == _combine_appid(contract, combine_appid)
        and len(stored) == len(sub_orders)
        and all(
            all(getattr(old, name) == getattr(new, name) for name in CHARGE_FIELDS)
            and new.out_trade_no in ("", old.out_trade_no)
            for old, new in zip(stored, sub_orders, strict=True)
        )
    )
    if not same:
        raise ValidationError(
            {
                "combine_out_trade_no": _("combine_out_trade_no %(number)s is already used for a different charge.")
                % {"number": number}
            }
        )
    return existing


def _requery_contract(contract: Contract) -> None:
    """CONTRACT_NOT_EXIST: the contract was terminated; ask WeChat Pay so ours says so too."""
    try:
        query(contract)
    except WeChatPayError as exc:
        logger.warning("contract %s could not be queried after CONTRACT_NOT_EXIST: %s", contract, exc)

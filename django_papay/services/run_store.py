"""Storing a billing run's charges in batches: the rules of ``deductions.store``, a few queries per batch.

A run of 100,000 charges stored one at a time costs several round trips each (the number looked up, the row,
its sub-orders, a transaction). Here each batch of ``BATCH`` charges is validated in memory by the same input
rules, its given numbers looked up in one query, and its deductions and sub-orders written with two
``bulk_create`` in one transaction. Anything out of the ordinary goes the one-at-a-time way (``store``), with
its own checks and errors: a charge whose number is stored already (the same charge, or another one), a
contract that is not plainly chargeable (not signed, no ``contract_id`` yet, expired, another merchant's), a
number given twice in the batch, and a batch the database refused (a racing caller took a number first:
the transaction rolled back, nothing of the batch is stored, and each charge is then stored alone).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..exceptions import PapayError
from ..models import BillingRun, Contract, Deduction, SubOrder, new_trade_no
from .deduction_input import clean_charge, clean_sub_orders, why_not_chargeable
from .deductions import store, unsaved

if TYPE_CHECKING:
    from .billing import Charge

logger = logging.getLogger("django_papay.deductions")

Refuse = Callable[["Charge", Exception], None]  # told of each charge refused, with why
BATCH = 500  # charges validated and written together; memory holds one batch, whatever the run's size


@dataclass
class _Ready:
    """A charge validated in memory, to be written with its batch."""

    charge: Charge
    deduction: Deduction
    sub_orders: list[SubOrder]


def store_in_batches(charges: Iterable[Charge], run: BillingRun, combine_appid: str | None, refuse: Refuse) -> None:
    """Store every charge as a CREATED deduction of ``run``; ``refuse(charge, error)`` for each one refused."""
    for batch in _batches(iter(charges)):
        ready, alone = _prepare(batch, run, combine_appid, refuse)
        if not _write(ready):
            alone = [item.charge for item in ready] + alone
        for charge in alone:
            _store_alone(charge, run, combine_appid, refuse)


def _batches(charges: Iterator[Charge]) -> Iterator[list[Charge]]:
    while batch := list(itertools.islice(charges, BATCH)):
        yield batch


def _prepare(
    batch: list[Charge], run: BillingRun, combine_appid: str | None, refuse: Refuse
) -> tuple[list[_Ready], list[Charge]]:
    """Validate each charge in memory: ready to write with the batch, or to be stored alone (see the docstring)."""
    ready: list[_Ready] = []
    alone: list[Charge] = []
    numbers_seen: set[str] = set()
    for charge in batch:
        contract = charge.contract
        if not isinstance(contract, Contract) or contract.pk is None or not _plainly_chargeable(contract):
            alone.append(charge)  # store() says why, or queries the missing contract_id
            continue
        try:
            sub_orders = clean_sub_orders(charge.sub_orders)
            number, risk_info, appid = clean_charge(charge.combine_out_trade_no, charge.risk_info, combine_appid)
            if number in numbers_seen:
                alone.append(charge)  # the second of one number: store() compares it with the first
                continue
            deduction = unsaved(contract, number, risk_info, appid, run)
        except (ValidationError, PapayError) as exc:
            refuse(charge, exc)
            continue
        numbers_seen.add(deduction.combine_out_trade_no)
        ready.append(_Ready(charge, deduction, sub_orders))
    given = [item.deduction.combine_out_trade_no for item in ready if item.charge.combine_out_trade_no]
    stored = set(
        Deduction.objects.filter(combine_out_trade_no__in=given).values_list("combine_out_trade_no", flat=True)
    )
    if stored:  # posted again (the same charge) or taken (another): store() tells which
        alone += [item.charge for item in ready if item.deduction.combine_out_trade_no in stored]
        ready = [item for item in ready if item.deduction.combine_out_trade_no not in stored]
    return ready, alone


def _plainly_chargeable(contract: Contract) -> bool:
    return contract.status == Contract.Status.SIGNED and bool(contract.contract_id) and not why_not_chargeable(contract)


def _write(ready: list[_Ready]) -> bool:
    """The batch's deductions and sub-orders in one transaction; False (nothing written) if the database refused."""
    if not ready:
        return True
    try:
        with transaction.atomic():
            created = Deduction.objects.bulk_create([item.deduction for item in ready])
            sub_orders = []
            for item, deduction in zip(ready, created, strict=True):
                for sub_order in item.sub_orders:
                    sub_order.deduction = deduction
                    sub_order.out_trade_no = sub_order.out_trade_no or new_trade_no()
                    sub_orders.append(sub_order)
            SubOrder.objects.bulk_create(sub_orders)
    except IntegrityError:
        logger.info("a batch of %d charges met a number stored meanwhile; storing them one at a time", len(ready))
        for item in ready:
            item.deduction.pk = None  # bulk_create set them before the rollback
            for sub_order in item.sub_orders:
                sub_order.pk = None
        return False
    return True


def _store_alone(charge, run: BillingRun, combine_appid: str | None, refuse: Refuse) -> None:
    try:
        store(
            charge.contract,
            charge.sub_orders,
            combine_out_trade_no=charge.combine_out_trade_no,
            risk_info=charge.risk_info,
            combine_appid=combine_appid,
            billing_run=run,
        )
    except (ValidationError, PapayError) as exc:
        refuse(charge, exc)
    except Exception as exc:  # not input we foresaw: reported with the charge, never a run stopped half-way
        logger.exception("billing run %s: a charge could not be stored", run.pk)
        refuse(charge, exc)

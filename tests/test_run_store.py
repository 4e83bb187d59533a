"""A billing run's charges stored in batches (services/run_store.py): the same rules as one ``deduct`` at a time,
a few queries per batch, and anything unusual stored alone with its own checks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_papay.exceptions import ContractStateError
from django_papay.models import Contract, Deduction, SubOrder
from django_papay.services import Charge, run_store
from django_papay.services.billing import store_run

from .helpers import MEMBERSHIP, SUB_ORDERS


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(run_store, "BATCH", 10)


def test_a_run_larger_than_a_batch_stores_every_charge_with_a_few_queries_per_batch(
    papay, signed_contract, small_batches
):
    with CaptureQueriesContext(connection) as queries:
        planned = store_run((Charge(signed_contract, SUB_ORDERS) for _ in range(35)), label="May")
    assert planned.refused == []
    deductions = planned.run.deductions.all()
    assert deductions.count() == 35 and set(deductions.values_list("status", flat=True)) == {"created"}
    assert SubOrder.objects.filter(deduction__billing_run=planned.run).count() == 35
    numbers = list(deductions.values_list("combine_out_trade_no", flat=True))
    assert len(set(numbers)) == 35
    # 4 batches of at most 10: a transaction with two bulk inserts each (and the run's row); not 35 × several.
    assert len(queries) <= 4 * 6 + 2, [query["sql"][:80] for query in queries.captured_queries]


def test_refused_charges_are_reported_and_the_rest_of_the_batch_is_stored(papay, signed_contract, small_batches):
    ended = Contract.objects.create(plan_id=signed_contract.plan_id, contract_display_account="x")
    charges = [
        Charge(signed_contract, SUB_ORDERS),
        Charge(signed_contract, [{**MEMBERSHIP, "amount": 0}]),  # bad input
        Charge(ended, SUB_ORDERS),  # not signed: stored alone, which says why
        Charge(signed_contract, SUB_ORDERS),
    ]
    planned = store_run(charges)
    assert planned.run.deductions.count() == 2
    refused = {charges.index(charge): error for charge, error in planned.refused}
    assert set(refused) == {1, 2}
    assert isinstance(refused[2], ContractStateError)


def test_a_number_given_twice_or_stored_before_goes_through_the_one_at_a_time_checks(
    papay, signed_contract, small_batches
):
    before = store_run([Charge(signed_contract, SUB_ORDERS, combine_out_trade_no="RUN-1")]).run.deductions.get()
    charges = [
        Charge(signed_contract, SUB_ORDERS, combine_out_trade_no="RUN-1"),  # the same charge again: found
        Charge(signed_contract, [{**MEMBERSHIP, "amount": 999}], combine_out_trade_no="RUN-1"),  # another: refused
        Charge(signed_contract, SUB_ORDERS, combine_out_trade_no="RUN-2"),
        Charge(signed_contract, SUB_ORDERS, combine_out_trade_no="RUN-2"),  # twice in the batch: stored once
    ]
    planned = store_run(charges)
    assert [charges.index(charge) for charge, _ in planned.refused] == [1]
    assert Deduction.objects.filter(combine_out_trade_no="RUN-1").get() == before
    assert Deduction.objects.filter(combine_out_trade_no="RUN-2").count() == 1


def test_a_batch_the_database_refuses_is_stored_one_at_a_time(papay, signed_contract, small_batches):
    taken = store_run([Charge(signed_contract, SUB_ORDERS)]).run.deductions.get().sub_orders.get().out_trade_no
    # A sub-order number another charge holds: the bulk insert fails whole, then each charge is stored alone.
    charges = [Charge(signed_contract, SUB_ORDERS) for _ in range(3)]
    charges.insert(1, Charge(signed_contract, [{**MEMBERSHIP, "out_trade_no": taken}]))
    planned = store_run(charges)
    assert planned.run.deductions.count() == 3
    assert [charges.index(charge) for charge, _ in planned.refused] == [1]


def test_a_runs_rows_are_read_a_batch_at_a_time_in_the_order_stored(papay, signed_contract, monkeypatch):
    from django_papay.services import billing

    monkeypatch.setattr(billing, "FETCH", 4)
    run = store_run([Charge(signed_contract, SUB_ORDERS) for _ in range(10)]).run
    first = run.deductions.order_by("pk").first()
    Deduction.objects.filter(pk=first.pk).update(status=Deduction.Status.PROCESSING)  # claimed: not listed
    expected = list(run.deductions.filter(status="created").order_by("pk").values_list("pk", flat=True))
    assert [len(ids) for ids in billing.created_ids(run)] == [4, 4, 1]
    assert [pk for ids in billing.created_ids(run) for pk in ids] == expected
    with CaptureQueriesContext(connection) as queries:
        assert [deduction.pk for deduction in billing.created(run)] == expected
    assert len(queries) == 3  # three reads of at most 4, not one of all

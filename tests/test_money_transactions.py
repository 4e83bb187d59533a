"""Money moves outside any transaction, once.

A deduction's row must be committed before WeChat Pay is called: under ``ATOMIC_REQUESTS`` or inside
``transaction.atomic()`` a failure after the charge would roll the record of money taken back. And the deduct
confirmation form carries the charge's number, so posting it twice finds the first deduction.
"""

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.urls import resolve, reverse

from django_papay import dispatch, services
from django_papay.exceptions import InsideAtomicBlock
from django_papay.models import BillingRun, Deduction
from django_papay.services import deduct
from django_papay.services.deductions import send, store
from django_papay.signals import deduction_succeeded

from .helpers import MEMBERSHIP, confirmation_form, messages, signed_contracts, sub_order_fields

CONTRACTS = reverse("admin:django_papay_contract_changelist")
DEDUCTIONS = reverse("admin:django_papay_deduction_changelist")
STAFF = ("view_contract", "change_contract", "view_deduction", "deduct_contract")
CHARGE_FORM = sub_order_fields({"sub_mchid": "1900000201", "description": "会员月费", "amount": "15.00"})


class WorkerAborted(BaseException):
    """What a killed request looks like from inside: gunicorn's worker timeout, gevent's Timeout (BaseException,
    so no ``except Exception`` and no ``send_robust`` stops it)."""


def _deduct_posts(sandbox) -> int:
    return sum(sandbox.deductions.posts.values())


def _confirmation(staff, contracts) -> dict:
    """The deduct confirmation page as staff get it, turned into the form they post back (filled in)."""
    return {**confirmation_form(staff, CONTRACTS, "deduct", contracts), **CHARGE_FORM}


# --- the row commits before the call -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_charges_taken_stay_recorded_when_the_admin_request_dies_under_atomic_requests(
    papay, sandbox, staff_client, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    first, second = signed_contracts(sandbox, 2)
    succeeded = []

    def crm(deduction, **kwargs):
        succeeded.append(deduction.pk)
        if len(succeeded) == 2:
            raise WorkerAborted("the worker was killed after the second charge")

    deduction_succeeded.connect(crm, weak=False)
    try:
        staff = staff_client(*STAFF)
        with pytest.raises(WorkerAborted):
            staff.post(CONTRACTS, _confirmation(staff, [first, second]))
    finally:
        deduction_succeeded.disconnect(crm)

    assert _deduct_posts(sandbox) == 2  # both charged at WeChat Pay
    recorded = {d.contract_id: d.status for d in Deduction.objects.all()}
    assert recorded == {first.pk: Deduction.Status.SUCCEEDED, second.pk: Deduction.Status.SUCCEEDED}
    for url in (CONTRACTS, DEDUCTIONS):  # what Django's handler reads to leave ATOMIC_REQUESTS out
        assert "default" in resolve(url).func._non_atomic_requests


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL aborts a transaction on an error")
@pytest.mark.django_db(transaction=True)
def test_charges_taken_stay_recorded_when_a_receivers_database_error_breaks_the_request(
    papay, sandbox, staff_client, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    first, second = signed_contracts(sandbox, 2)
    staff = staff_client(*STAFF)
    succeeded = []

    def crm(deduction, **kwargs):  # a CRM in the same database, whose write fails on the second charge
        succeeded.append(deduction.pk)
        if len(succeeded) == 2:
            User.objects.create(username=User.objects.earliest("pk").username)  # taken: IntegrityError

    deduction_succeeded.connect(crm, weak=False)
    try:
        staff.post(CONTRACTS, _confirmation(staff, [first, second]))
    except DatabaseError:
        pass  # under ATOMIC_REQUESTS: the request's transaction is aborted, the next statement fails (a 500)
    finally:
        deduction_succeeded.disconnect(crm)

    assert _deduct_posts(sandbox) == 2
    recorded = {d.contract_id: d.status for d in Deduction.objects.all()}
    assert recorded == {first.pk: Deduction.Status.SUCCEEDED, second.pk: Deduction.Status.SUCCEEDED}


@pytest.mark.django_db
def test_deduct_inside_atomic_is_refused_before_anything_is_stored_or_sent(signed_contract, sandbox):
    with pytest.raises(InsideAtomicBlock, match=r"deduct must run outside transaction\.atomic\(\)"):
        with transaction.atomic():
            deduct(signed_contract, [MEMBERSHIP])
    assert _deduct_posts(sandbox) == 0 and not Deduction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("call", ["send", "settle", "settle_many", "reverse_deduction", "deduct_many"])
def test_every_money_moving_call_refuses_an_atomic_block(signed_contract, sandbox, call):
    deduction = store(signed_contract, [MEMBERSHIP])
    calls = {
        "send": lambda: send(deduction),
        "settle": lambda: services.settle(deduction),
        "settle_many": lambda: services.settle_many([deduction]),
        "reverse_deduction": lambda: services.reverse_deduction(deduction),
        "deduct_many": lambda: dispatch.deduct_many([services.Charge(signed_contract, [MEMBERSHIP])]),
    }
    requests = len(sandbox.requests)
    with pytest.raises(InsideAtomicBlock, match=f"{call} must run outside"):
        with transaction.atomic():
            calls[call]()
    assert len(sandbox.requests) == requests and not BillingRun.objects.exists()
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.CREATED


# --- the confirmation form carries the charge's number -----------------------------------------


@pytest.mark.django_db
def test_posting_the_deduct_confirmation_twice_charges_once(signed_contract, sandbox, staff_client):
    staff = staff_client(*STAFF)
    form = _confirmation(staff, [signed_contract])
    first = messages(staff.post(CONTRACTS, form, follow=True))
    again = messages(staff.post(CONTRACTS, form, follow=True))  # a double click, a refresh, a proxy's retry
    assert _deduct_posts(sandbox) == 1
    deduction = Deduction.objects.get()
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert len(first) == 1 and "succeeded" in first[0]
    (message,) = again
    assert message.startswith("Already made from this page") and "not charged again" in message
    assert deduction.combine_out_trade_no in message


@pytest.mark.django_db
def test_posting_the_deduct_confirmation_twice_with_tasks_charges_once(signed_contract, sandbox, staff_client, papay):
    papay["TASKS"] = True  # the tests' backend runs each task at once: a billing run, sent in the request
    staff = staff_client(*STAFF)
    form = _confirmation(staff, [signed_contract])
    staff.post(CONTRACTS, form, follow=True)
    staff.post(CONTRACTS, form, follow=True)
    assert _deduct_posts(sandbox) == 1
    assert Deduction.objects.get().status == Deduction.Status.SUCCEEDED


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["", "not a number!", "x" * 33])
def test_a_tampered_charge_number_is_refused_and_nothing_is_sent(signed_contract, sandbox, staff_client, number):
    staff = staff_client(*STAFF)
    form = _confirmation(staff, [signed_contract])
    (field,) = [name for name in form if name.startswith("combine_out_trade_no")]
    page = staff.post(CONTRACTS, {**form, field: number}, follow=True).content.decode()
    assert "errorlist" in page and _deduct_posts(sandbox) == 0 and not Deduction.objects.exists()


@pytest.mark.django_db
def test_a_charge_number_of_another_charge_is_refused(signed_contract, sandbox, staff_client):
    earlier = deduct(signed_contract, [{**MEMBERSHIP, "amount": 300}])
    staff = staff_client(*STAFF)
    form = _confirmation(staff, [signed_contract])
    (field,) = [name for name in form if name.startswith("combine_out_trade_no")]
    (message,) = messages(staff.post(CONTRACTS, {**form, field: earlier.combine_out_trade_no}, follow=True))
    assert "not charged" in message and "different charge" in message
    assert _deduct_posts(sandbox) == 1 and Deduction.objects.get() == earlier

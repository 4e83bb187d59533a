"""With PAPAY["TASKS"] the admin and the commands enqueue instead of calling WeChat Pay, and say how many."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse

from django_papay import tasks
from django_papay.dispatch import deduct_many
from django_papay.display import local_time
from django_papay.models import BillingRun, Contract, Deduction
from django_papay.services import Charge
from django_papay.services.deductions import store

from .helpers import SUB_ORDERS, confirm_action, messages, run_action, sub_order_fields

CONTRACT_STAFF = ("view_contract", "change_contract")


@pytest.fixture
def queued(settings, papay) -> list:
    """PAPAY["TASKS"] on, with a backend that only records what is enqueued (nothing runs)."""
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    return tasks.send_deduction.get_backend().results


def test_presign_action_enqueues_each_contract_and_says_how_many(queued, staff_client, sandbox):
    contracts = [Contract.objects.create(plan_id=12535, contract_display_account=str(i)) for i in range(2)]
    response = run_action(staff_client(*CONTRACT_STAFF, "presign_contract"), Contract, "presign", contracts)
    assert messages(response) == ["2 contracts queued; the workers will call WeChat Pay (filter: queued)."]
    assert sorted(result.args[0] for result in queued) == sorted(c.pk for c in contracts)
    assert Contract.objects.filter(queued_at__isnull=False).count() == 2
    assert sandbox.requests == []


def test_presign_action_on_the_immediate_backend_presigns_and_clears_queued(papay, staff_client, contract):
    papay["TASKS"] = True
    run_action(staff_client(*CONTRACT_STAFF, "presign_contract"), Contract, "presign", [contract])
    contract.refresh_from_db()
    assert contract.status == Contract.Status.PRESIGNED and contract.queued_at is None


def test_deduct_action_charges_through_a_billing_run(papay, staff_client, signed_contract, sandbox):
    papay["TASKS"] = True
    staff = staff_client(*CONTRACT_STAFF, "deduct_contract")
    form = sub_order_fields({"sub_mchid": "1900000201", "description": "月费", "amount": "15.00"})
    response = confirm_action(staff, Contract, "deduct", [signed_contract], **form)
    (run,) = BillingRun.objects.all()
    assert messages(response) == [f"{run}: 1 deduction queued; follow it under billing runs."]
    user = response.wsgi_request.user.get_username()
    assert re.fullmatch(rf"Charged by {user} in the admin, \d{{4}}-\d\d-\d\d \d\d:\d\d", run.label)
    assert list(run.deductions.values_list("status", flat=True)) == [Deduction.Status.SUCCEEDED]


def test_papay_settle_enqueues_the_processing_deductions_and_says_how_many(queued, signed_contract):
    deduction = store(signed_contract, SUB_ORDERS)
    Deduction.objects.filter(pk=deduction.pk).update(status=Deduction.Status.PROCESSING, sent_at=deduction.created_at)
    out = StringIO()
    call_command("papay_settle", "--older-than", "0", stdout=out)
    assert out.getvalue() == "1 deduction queued to be settled (PAPAY['TASKS'])\n"
    assert [result.args for result in queued] == [[deduction.pk]]


def test_papay_sync_enqueues_the_named_contracts(queued, presigned_contract):
    out = StringIO()
    call_command("papay_sync", presigned_contract.out_contract_code, stdout=out)
    assert out.getvalue() == "1 contracts queued for a query (PAPAY['TASKS'])\n"
    assert [result.task.func for result in queued] == [tasks.query_contract.func]


def test_billing_run_changelist_counts_its_deductions_per_status(papay, staff_client, signed_contract, sandbox):
    planned = deduct_many([Charge(signed_contract, SUB_ORDERS) for _ in range(2)], label="June")
    sandbox.fail_next("reset")
    deduct_many([Charge(signed_contract, SUB_ORDERS)], label="July")
    page = staff_client("view_billingrun").get(reverse("admin:django_papay_billingrun_changelist"))
    text = page.content.decode()
    assert page.status_code == 200 and "June" in text and "July" in text
    assert local_time(planned.run.created_at) in text  # the one format every list uses
    url = reverse("admin:django_papay_deduction_changelist")
    assert f'{url}?billing_run={planned.run.pk}&amp;status=succeeded">2</a>' in text
    listed = staff_client("view_deduction").get(f"{url}?billing_run={planned.run.pk}&status=succeeded")
    assert listed.context["cl"].result_count == 2


def test_in_flight_filter_lists_processing_deductions(papay, staff_client, signed_contract, sandbox):
    sandbox.fail_next("reset")
    open_ = deduct_many([Charge(signed_contract, SUB_ORDERS)]).run.deductions.get()
    deduct_many([Charge(signed_contract, SUB_ORDERS)])
    page = staff_client("view_deduction").get(reverse("admin:django_papay_deduction_changelist") + "?queue=in_flight")
    assert page.context["cl"].result_count == 1
    assert list(page.context["cl"].queryset) == [open_]


def test_the_queued_filters_show_only_with_tasks(papay, staff_client, settings):
    staff = staff_client("view_contract", "view_deduction")
    contracts = staff.get(reverse("admin:django_papay_contract_changelist")).content.decode()
    deductions = staff.get(reverse("admin:django_papay_deduction_changelist")).content.decode()
    assert "?queue=queued" not in contracts and "?queue=queued" not in deductions  # nothing is ever queued
    assert "?queue=in_flight" in deductions  # processing charges, sent here
    papay["TASKS"] = True
    assert "?queue=queued" in staff.get(reverse("admin:django_papay_contract_changelist")).content.decode()
    assert "?queue=queued" in staff.get(reverse("admin:django_papay_deduction_changelist")).content.decode()

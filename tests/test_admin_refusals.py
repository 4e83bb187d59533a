"""What the contracts admin refuses, and how it says so: deleting what WeChat Pay knows, terminating nothing,
and the add form asking only for what staff fill in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_papay.models import Contract, Deduction

from .helpers import APPID, PLAN_ID, messages, run_action

pytestmark = pytest.mark.django_db
ADD = reverse("admin:django_papay_contract_add")


def _delete_url(contract: Contract) -> str:
    return reverse("admin:django_papay_contract_delete", args=[contract.pk])


def test_a_signed_contract_page_offers_no_delete_and_its_delete_url_is_refused(admin_client, signed_contract):
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[signed_contract.pk]))
    assert _delete_url(signed_contract) not in page.content.decode()
    assert admin_client.post(_delete_url(signed_contract), {"post": "yes"}).status_code == 403
    assert Contract.objects.filter(pk=signed_contract.pk).exists()


def test_bulk_delete_of_a_pre_signed_contract_is_refused_with_the_reason(admin_client, presigned_contract):
    page = run_action(admin_client, Contract, "delete_selected", [presigned_contract])
    text = page.content.decode()
    assert "WeChat Pay knows it, so it is kept" in text and 'name="post"' not in text
    run_action(admin_client, Contract, "delete_selected", [presigned_contract], post="yes")
    assert Contract.objects.filter(pk=presigned_contract.pk).exists()


def test_a_contract_with_deductions_is_refused_on_a_page_naming_them(admin_client, contract):
    Contract.objects.filter(pk=contract.pk).update(status=Contract.Status.TERMINATED)
    deduction = Deduction.objects.create(contract=contract, combine_appid=APPID)
    page = admin_client.get(_delete_url(contract))
    text = page.content.decode()
    assert f"has deductions ({deduction.combine_out_trade_no})" in text and "permission" not in text
    admin_client.post(_delete_url(contract), {"post": "yes"})
    assert Contract.objects.filter(pk=contract.pk).exists()


def test_a_created_contract_can_still_be_deleted(admin_client, contract):
    admin_client.post(_delete_url(contract), {"post": "yes"})
    assert not Contract.objects.filter(pk=contract.pk).exists()


def test_terminate_with_no_signed_contract_says_so_and_offers_no_button(admin_client, contract):
    page = run_action(admin_client, Contract, "terminate", [contract])
    text = page.content.decode()
    assert "None of the selected contracts is signed" in text
    assert "Terminate at WeChat Pay" not in text.split("<form", 1)[1]  # no submit: only the way back


def test_the_add_form_asks_only_for_what_staff_fill_in(admin_client):
    text = admin_client.get(ADD).content.decode()
    assert 'name="plan_id"' in text and "field-pre_entrustweb_id" not in text and "field-status" not in text
    assert 'PAPAY["APPID"]' not in text and "PAPAY[&quot;APPID&quot;]" not in text


@pytest.mark.parametrize("plan_id", ["0", "-5"])
def test_plan_id_zero_and_negative_get_the_same_error(admin_client, plan_id):
    page = admin_client.post(ADD, {"plan_id": plan_id, "contract_display_account": "a"})
    assert page.context["adminform"].form.errors["plan_id"] == ["Ensure this value is greater than or equal to 1."]


def test_a_pre_signed_contract_keeps_the_appid_that_was_sent(papay, sandbox, presigned_contract):
    assert Contract.objects.create(plan_id=PLAN_ID, contract_display_account="a").appid == ""
    assert presigned_contract.appid == APPID
    assert Contract.objects.get(pk=presigned_contract.pk).appid == sandbox.requests[0].json()["appid"]


def test_no_message_is_needed_to_say_nothing_was_deleted(admin_client, signed_contract):
    page = run_action(admin_client, Contract, "delete_selected", [signed_contract], post="yes")
    assert messages(page) == []

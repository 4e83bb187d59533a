"""The changelists a platform's data needs (admin/large_tables.py): exact indexed search, estimated counts on
PostgreSQL, filters whose choices come from the settings. benchmarks/platform_scale.py times them on a million rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from django_papay.admin import large_tables
from django_papay.admin.large_tables import EstimatedCountPaginator, planned_rows
from django_papay.models import Contract, Deduction, Notification, Refund, SubOrder

from .helpers import PLAN_ID

LIST = reverse("admin:django_papay_contract_changelist")
NOTIFICATIONS = reverse("admin:django_papay_notification_changelist")
REFUNDS = reverse("admin:django_papay_refund_changelist")


@pytest.fixture
def viewer(staff_client):
    return staff_client("view_contract", "view_notification", "view_refund")


def listed(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


def make(count: int, **fields) -> list[Contract]:
    return [
        Contract.objects.create(plan_id=PLAN_ID, contract_display_account=f"user {number}", **fields)
        for number in range(count)
    ]


def test_the_search_box_finds_a_contract_by_each_of_its_numbers_exactly(viewer):
    wanted, other = make(2)
    Contract.objects.filter(pk=wanted.pk).update(contract_id="CID-42", openid="openid-42", pre_entrustweb_id="P42")
    for term in (wanted.out_contract_code, "CID-42", "openid-42", "P42", f"  {wanted.out_contract_code} "):
        assert listed(viewer.get(LIST, {"q": term})) == {wanted.pk}, term
    assert other.pk not in listed(viewer.get(LIST, {"q": "CID-42"}))


def test_a_part_of_a_number_finds_nothing_rather_than_scanning_the_table(viewer):
    (contract,) = make(1)
    assert listed(viewer.get(LIST, {"q": contract.out_contract_code[:8]})) == set()
    assert listed(viewer.get(LIST, {"q": "user 0"})) == set()  # not a number: no icontains over the table


def test_a_notification_is_found_by_its_id_once_processed_or_by_its_contract(viewer):
    (contract,) = make(1)
    processed = Notification.objects.create(notification_id="N-1", verified=True, processed=True, contract=contract)
    Notification.objects.create(notification_id="N-2", verified=False)  # rejected: not in the partial index
    assert listed(viewer.get(NOTIFICATIONS, {"q": "N-1"})) == {processed.pk}
    assert listed(viewer.get(NOTIFICATIONS, {"q": "N-2"})) == set()
    assert listed(viewer.get(NOTIFICATIONS, {"q": contract.out_contract_code})) == {processed.pk}


def refunds(count: int) -> list[Refund]:
    """``count`` refunds, each of its own charged sub-order (WeChat Pay's numbers made up)."""
    (contract,) = make(1)
    made = []
    for number in range(count):
        deduction = Deduction.objects.create(contract=contract, status=Deduction.Status.SUCCEEDED)
        sub_order = SubOrder.objects.create(
            deduction=deduction,
            mchid="1900000109",
            sub_mchid="1900000201",
            amount=1500,
            description="月费",
            transaction_id=f"T-{number}",
        )
        made.append(
            Refund.objects.create(sub_order=sub_order, amount=500, refund_id=f"RID-{number}", advance=number == 1)
        )
    return made


def test_a_refund_is_found_by_each_of_its_numbers_and_its_charges_exactly(viewer):
    wanted, other = refunds(2)
    sub_order = wanted.sub_order
    numbers = (
        wanted.out_refund_no,
        "RID-0",
        sub_order.out_trade_no,
        "T-0",
        sub_order.deduction.combine_out_trade_no,
        f" {wanted.out_refund_no}  ",
    )
    for term in numbers:
        assert listed(viewer.get(REFUNDS, {"q": term})) == {wanted.pk}, term
    assert listed(viewer.get(REFUNDS, {"q": wanted.out_refund_no[:10]})) == set()  # no icontains over the table
    assert listed(viewer.get(REFUNDS, {"advance__exact": "1"})) == {other.pk}


def test_the_refund_list_neither_counts_every_refund_nor_lists_their_years(viewer):
    refunds(2)
    page = viewer.get(REFUNDS)
    cl = page.context["cl"]
    assert isinstance(cl.paginator, EstimatedCountPaginator) and not cl.model_admin.show_full_result_count
    assert cl.date_hierarchy is None  # its year links would be a SELECT DISTINCT over the whole table
    assert listed(page) == set(Refund.objects.values_list("pk", flat=True))


def test_the_event_filter_offers_each_family_and_filters_by_it(viewer):
    sign = Notification.objects.create(notification_id="N-1", event_type="ECOMMERCE_ENTRUST.SIGN")
    Notification.objects.create(notification_id="N-2", event_type="SOMETHING.ELSE")
    page = viewer.get(NOTIFICATIONS, {"family": "ECOMMERCE_ENTRUST"})
    assert listed(page) == {sign.pk}
    assert "ECOMMERCE_ENTRUST.*" in page.content.decode()


def test_the_plan_and_appid_filters_offer_the_configured_values_without_reading_the_table(papay, viewer):
    papay["APP_PLAN_IDS"] = [PLAN_ID, 777]
    make(2)
    other = Contract.objects.create(plan_id=777, contract_display_account="x")
    page = viewer.get(LIST, {"plan_id": "777"})
    assert listed(page) == {other.pk}
    choices = [
        choice["display"] for spec in page.context["cl"].filter_specs for choice in spec.choices(page.context["cl"])
    ]
    assert "777" in choices and str(PLAN_ID) in choices and papay["APPID"] in choices


def test_a_small_list_is_counted_exactly(db):
    make(3)
    assert EstimatedCountPaginator(Contract.objects.all(), 100).count == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's")
def test_a_large_list_is_counted_from_the_planners_estimate_on_postgresql(db, monkeypatch):
    make(30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_papay_contract")
    estimate = planned_rows(Contract.objects.all())
    assert 20 <= estimate <= 40
    monkeypatch.setattr(large_tables, "EXACT_BELOW", 10)  # 30 rows now count as "large"
    counted = EstimatedCountPaginator(Contract.objects.all(), 10).count
    assert counted == estimate

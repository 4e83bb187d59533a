"""Profit sharing in the admin: frozen / shared / finished at a glance, the shares on the deduction's page, and
"Share and finish now" / "Finish (unfreeze all)" each behind its own permission."""

import pytest
from django.urls import reverse

from django_papay import wechatpay
from django_papay.models import ProfitShare
from django_papay.services import deduct

from .helpers import COMMISSION, MCHID, SHARED_MEMBERSHIP, SUB_MCHID, messages, run_action

pytestmark = pytest.mark.django_db

DEDUCTIONS = reverse("admin:django_papay_deduction_changelist")
VIEW = ("view_deduction", "view_profitshare")


def platform_commission(sub_order):
    return [COMMISSION]


@pytest.fixture
def shared_deduction(signed_contract, papay):
    papay["COMMISSION"] = "tests.test_admin_sharing.platform_commission"
    return deduct(signed_contract, [SHARED_MEMBERSHIP])


@pytest.mark.parametrize("action, codename", [("share_now", "share_profit"), ("finish_now", "finish_sharing")])
def test_each_sharing_action_is_offered_and_postable_only_with_its_permission(
    shared_deduction, sandbox, staff_client, action, codename
):
    other = {"share_profit": "finish_sharing", "finish_sharing": "share_profit"}[codename]
    without = staff_client(*VIEW, other)
    assert f'value="{action}"' not in without.get(DEDUCTIONS).content.decode()
    sent = len(sandbox.requests)
    run_action(without, DEDUCTIONS, action, [shared_deduction])
    assert len(sandbox.requests) == sent and not ProfitShare.objects.exists()
    assert f'value="{action}"' in staff_client(*VIEW, codename).get(DEDUCTIONS).content.decode()


def test_share_and_finish_now_pays_the_commission_and_unfreezes_the_rest(shared_deduction, sandbox, staff_client):
    staff = staff_client(*VIEW, "share_profit")
    assert "papay-sharing-frozen" in staff.get(DEDUCTIONS).content.decode()
    (message,) = messages(run_action(staff, DEDUCTIONS, "share_now", [shared_deduction]))
    assert "processing" in message
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}
    assert sandbox.balance(MCHID)["available"] == 150
    (message,) = messages(run_action(staff, DEDUCTIONS, "share_now", [shared_deduction]))  # settles, same number
    assert "finished" in message and ProfitShare.objects.count() == 1
    assert "papay-sharing-finished" in staff.get(DEDUCTIONS).content.decode()
    page = staff.get(reverse("admin:django_papay_deduction_change", args=[shared_deduction.pk])).content.decode()
    share = ProfitShare.objects.get()
    assert share.out_order_no in page and f"{MCHID} ¥1.50 SUCCESS" in page


def test_finish_now_unfreezes_everything(shared_deduction, sandbox, staff_client):
    staff = staff_client(*VIEW, "finish_sharing")
    (message,) = messages(run_action(staff, DEDUCTIONS, "finish_now", [shared_deduction]))
    assert "finished" in message
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1500}
    assert not [r for r in sandbox.requests if r.path == wechatpay.SHARE_ORDERS_PATH]
    (message,) = messages(run_action(staff, DEDUCTIONS, "finish_now", [shared_deduction]))
    assert "not frozen" in message or "finished" in message


def test_a_deduction_without_profit_sharing_is_not_shared(signed_contract, sandbox, staff_client):
    from .helpers import MEMBERSHIP

    deduction = deduct(signed_contract, [MEMBERSHIP])
    staff = staff_client(*VIEW, "share_profit")
    (message,) = messages(run_action(staff, DEDUCTIONS, "share_now", [deduction]))
    assert "No sub-order" in message and not ProfitShare.objects.exists()


def test_the_shares_page_is_read_only(shared_deduction, sandbox, staff_client):
    staff = staff_client(*VIEW, "share_profit")
    run_action(staff, DEDUCTIONS, "share_now", [shared_deduction])
    share = ProfitShare.objects.get()
    page = staff.get(reverse("admin:django_papay_profitshare_change", args=[share.pk]))
    assert page.status_code == 200 and share.out_order_no in page.content.decode()
    assert staff.get(reverse("admin:django_papay_profitshare_add")).status_code == 403


def test_profit_sharing_reads_in_chinese(shared_deduction, sandbox, staff_client, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    staff = staff_client(*VIEW, "share_profit", "finish_sharing")
    page = staff.get(DEDUCTIONS).content.decode()
    for label in ("立即分账并完结", "完结分账（全部解冻）", "冻结"):
        assert label in page, label
    (message,) = messages(run_action(staff, DEDUCTIONS, "finish_now", [shared_deduction]))
    assert "已完结" in message and "完结" in message


def test_with_tasks_share_and_finish_now_is_queued(shared_deduction, sandbox, staff_client, settings, papay):
    from django.conf import settings as django_settings

    from django_papay import tasks

    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    staff = staff_client(*VIEW, "share_profit")
    (message,) = messages(run_action(staff, DEDUCTIONS, "share_now", [shared_deduction]))
    assert "1 sub-orders queued" in message and not ProfitShare.objects.exists()
    (queued,) = [r for r in tasks.share_sub_order.get_backend().results if r.task.func is tasks.share_sub_order.func]
    assert queued.args == [shared_deduction.sub_orders.get().pk]

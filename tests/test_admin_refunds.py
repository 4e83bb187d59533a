"""Refunds through the admin: "Refund…" on a deduction; settle, 垫付 and retry on refunds; each behind a permission."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from django_papay import wechatpay
from django_papay.models import Deduction, Refund
from django_papay.services import deduct, refund, settle_refund

from .helpers import MEMBERSHIP, confirm_action, confirmation_form, messages, run_action

pytestmark = pytest.mark.django_db

DEDUCTIONS = reverse("admin:django_papay_deduction_changelist")
REFUNDS = reverse("admin:django_papay_refund_changelist")
VIEW = ("view_deduction", "view_refund")
DELIVERY = {"sub_mchid": "1900000202", "description": "配送费", "amount": 300}


@pytest.fixture
def charged(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP, DELIVERY])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction


def _form(deduction, **fields):
    delivery = deduction.sub_orders.get(sub_mchid="1900000202")
    return {"confirm": "yes", "sub_order": str(delivery.pk), "amount": "3.00", "reason": "退货", **fields}


def test_refund_is_offered_and_postable_only_with_its_permission(charged, sandbox, staff_client):
    without = staff_client(*VIEW)
    assert 'value="refund"' not in without.get(DEDUCTIONS).content.decode()
    run_action(without, DEDUCTIONS, "refund", [charged], **_form(charged))
    assert not Refund.objects.exists() and not sandbox.refunds.posts
    assert 'value="refund"' in staff_client(*VIEW, "refund_deduction").get(DEDUCTIONS).content.decode()


def test_refund_asks_sub_order_amount_and_reason_and_shows_what_is_left(charged, sandbox, staff_client):
    membership = charged.sub_orders.get(sub_mchid="1900000201")
    refund(membership, 500)
    staff = staff_client(*VIEW, "refund_deduction")
    page = run_action(staff, DEDUCTIONS, "refund", [charged]).content.decode()
    assert "Refund with WeChat Pay" in page and 'name="amount"' in page and 'name="reason"' in page
    assert "Refundable: ¥13.00 of ¥18.00" in page and "refundable ¥10.00" in page
    assert sum(sandbox.refunds.posts.values()) == 1  # the page sent nothing


def test_refund_sends_the_amount_in_fen_and_says_so(charged, sandbox, staff_client):
    staff = staff_client(*VIEW, "refund_deduction")
    response = confirm_action(staff, DEDUCTIONS, "refund", [charged], **_form(charged))
    made = Refund.objects.get()
    assert made.amount == 300 and made.reason == "退货" and made.sub_order.sub_mchid == "1900000202"
    (message,) = messages(response)
    assert "¥3.00" in message and "processing" in message


def test_the_page_posted_twice_refunds_once(charged, sandbox, staff_client):
    staff = staff_client(*VIEW, "refund_deduction")
    form = {**confirmation_form(staff, DEDUCTIONS, "refund", [charged]), **_form(charged)}
    staff.post(DEDUCTIONS, form, follow=True)
    response = staff.post(DEDUCTIONS, form, follow=True)
    assert Refund.objects.count() == 1 and sum(sandbox.refunds.posts.values()) == 1
    assert "not refunded again" in messages(response)[0]


@pytest.mark.parametrize("amount", ["3.01", "0", "1.001", "abc"])
def test_a_bad_or_excessive_amount_refunds_nothing(charged, sandbox, staff_client, amount):
    staff = staff_client(*VIEW, "refund_deduction")
    response = confirm_action(staff, DEDUCTIONS, "refund", [charged], **_form(charged, amount=amount))
    assert not Refund.objects.exists() and not sandbox.refunds.posts
    page = response.content.decode()
    assert "errorlist" in page or any("can still be refunded" in m for m in messages(response))


def test_refund_takes_one_deduction_at_a_time(charged, signed_contract, sandbox, staff_client):
    other = deduct(signed_contract, [MEMBERSHIP])
    response = run_action(staff_client(*VIEW, "refund_deduction"), DEDUCTIONS, "refund", [charged, other])
    assert messages(response) == ["Choose one deduction to refund."]


def test_the_deduction_page_lists_its_refunds(charged, sandbox, staff_client):
    made = refund(charged.sub_orders.get(sub_mchid="1900000202"), 300)
    page = staff_client(*VIEW).get(reverse("admin:django_papay_deduction_change", args=[charged.pk])).content.decode()
    assert made.out_refund_no in page and "¥3.00" in page
    cells = re.findall(r'<td class="field-(refunded|refundable)">\s*<p>([^<]*)</p>', page)
    assert cells == [("refunded", "¥0.00"), ("refundable", "¥15.00"), ("refunded", "¥0.00"), ("refundable", "¥0.00")]


def test_the_refund_list_shows_yuan_badges_and_finds_by_numbers(charged, sandbox, staff_client):
    made = refund(charged.sub_orders.get(sub_mchid="1900000202"), 300)
    staff = staff_client(*VIEW)
    page = staff.get(REFUNDS, {"q": charged.combine_out_trade_no}).content.decode()
    assert made.out_refund_no in page and "¥3.00" in page and "papay-status-processing" in page
    assert made.out_refund_no not in staff.get(REFUNDS, {"q": "NOTHING-LIKE-IT"}).content.decode()


@pytest.mark.parametrize("action, codename", [("retry_abnormal", "retry_refund"), ("settle", "refund_deduction")])
def test_refund_actions_need_their_permission(charged, sandbox, staff_client, action, codename):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = settle_refund(refund(charged.sub_orders.get(sub_mchid="1900000202"), 300))
    assert made.status == Refund.Status.ABNORMAL
    without = staff_client(*VIEW)
    assert f'value="{action}"' not in without.get(REFUNDS).content.decode()
    sent = len(sandbox.requests)
    run_action(without, REFUNDS, action, [made])
    assert len(sandbox.requests) == sent
    assert f'value="{action}"' in staff_client(*VIEW, codename).get(REFUNDS).content.decode()


def test_a_refund_short_of_balance_is_sent_again_as_advanced_only_with_the_refund_permission(
    charged, sandbox, staff_client
):
    sandbox.refunds.not_enough = True  # the sub-merchant's balance is short: refused NOT_ENOUGH, retryable
    made = refund(charged.sub_orders.get(sub_mchid="1900000202"), 300)
    assert made.error_code == "NOT_ENOUGH" and not made.advance
    without = staff_client(*VIEW)
    assert 'value="advance_refund"' not in without.get(REFUNDS).content.decode()
    sent = len(sandbox.requests)
    run_action(without, REFUNDS, "advance_refund", [made])
    assert len(sandbox.requests) == sent
    response = run_action(staff_client(*VIEW, "refund_deduction"), REFUNDS, "advance_refund", [made])
    made.refresh_from_db()
    assert made.advance and made.status == Refund.Status.PROCESSING and messages(response)
    first, again = (r.json() for r in sandbox.requests if r.path == wechatpay.REFUND_APPLY_PATH)
    assert again["out_refund_no"] == first["out_refund_no"] == made.out_refund_no  # the same number, 垫付 now
    assert again.get("refund_account") == wechatpay.REFUND_SOURCE_PARTNER_ADVANCE != first.get("refund_account")


def test_retry_abnormal_refund_from_the_admin(charged, sandbox, staff_client):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = settle_refund(refund(charged.sub_orders.get(sub_mchid="1900000202"), 300))
    response = run_action(staff_client(*VIEW, "retry_refund"), REFUNDS, "retry_abnormal", [made])
    made.refresh_from_db()
    assert made.status == Refund.Status.PROCESSING and "processing" in messages(response)[0]


def test_the_admin_speaks_chinese(charged, sandbox, staff_client):
    refund(charged.sub_orders.get(sub_mchid="1900000202"), 300)
    staff = staff_client(*VIEW, "refund_deduction", "retry_refund")
    with translation.override("zh-hans"):
        page = staff.get(REFUNDS, headers={"accept-language": "zh-hans"}).content.decode()
        form = run_action(staff, DEDUCTIONS, "refund", [charged], HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "退款单号" in page and "退款异常" in page and "重试异常退款" in page
    assert "可退金额" in form


def test_a_refund_that_succeeded_says_refunded_in_chinese_not_charged(charged, sandbox, staff_client):
    made = settle_refund(refund(charged.sub_orders.get(sub_mchid="1900000202"), 300))
    assert made.status == Refund.Status.SUCCEEDED
    with translation.override("zh-hans"):
        assert (made.get_status_display(), charged.get_status_display()) == ("退款成功", "扣款成功")
        page = staff_client(*VIEW).get(REFUNDS, headers={"accept-language": "zh-hans"}).content.decode()
    assert re.findall(r'papay-status-succeeded">([^<]+)<', page) == ["退款成功"]  # the list's badge


def test_a_refund_notification_links_its_refund(charged, sandbox, staff_client):
    from django_papay.models import Notification

    from .helpers import deliver

    made = refund(charged.sub_orders.get(sub_mchid="1900000202"), 300)
    deliver(sandbox.refund_notification(made.out_refund_no))
    page = staff_client("view_notification").get(
        reverse("admin:django_papay_notification_change", args=[Notification.objects.get().pk])
    )
    assert reverse("admin:django_papay_refund_change", args=[made.pk]) in page.content.decode()

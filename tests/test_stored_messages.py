"""Errors stored on rows are read in the reader's language, whoever wrote them and in whichever language.

``last_error`` keeps the English text (search, exports, logs); ``last_error_message`` the message itself,
rendered when read. The end-to-end tests settle a charge WeChat Pay never received, over HTTP to the sandbox.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy, gettext_noop

from django_papay import wechatpay
from django_papay.exceptions import WeChatPayError
from django_papay.models import Deduction, Refund
from django_papay.services import deduct, refund, settle
from django_papay.services.state import correct_deduction
from django_papay.stored_messages import Message, error_columns, rendered

from .helpers import MEMBERSHIP, deliver

NEVER_RECEIVED = gettext_noop("WeChat Pay never received this charge: %(error)s")
REFUSAL = WeChatPayError("订单不存在", code="ORDER_NOT_EXIST", status=404, request_id="req-1")


def zh(message):
    with translation.override("zh-hans"):
        return str(message)


def zh_error(row):
    with translation.override("zh-hans"):
        return row.error_display()


# --- the message ---------------------------------------------------------------------------------


def test_a_message_renders_in_the_active_language():
    message = Message(NEVER_RECEIVED, error="ORDER_NOT_EXIST")
    assert message.english() == "WeChat Pay never received this charge: ORDER_NOT_EXIST"
    assert zh(message) == "微信支付未收到这笔扣款：ORDER_NOT_EXIST"


def test_wechatpay_own_words_are_kept_as_they_came():
    assert zh(Message(NEVER_RECEIVED, error=REFUSAL)) == f"微信支付未收到这笔扣款：{REFUSAL}"
    assert error_columns(REFUSAL) == {"last_error": str(REFUSAL), "last_error_message": None}


def test_a_message_survives_its_json_with_nested_messages():
    inner = Message(gettext_noop("Not sent: %(problem)s"), problem="-")
    message = Message(NEVER_RECEIVED, error=inner)
    again = Message.from_json(message.as_json())
    assert again == message
    assert zh(again) == "微信支付未收到这笔扣款：未发送：-"


def test_a_choices_label_is_rendered_in_the_readers_language():
    with translation.override("zh-hans"):  # the writer's language does not matter
        message = Message(
            gettext_noop("WeChat Pay now reports this %(status)s deduction as %(outcome)s; check it."),
            status=Deduction.Status.FAILED.label,
            outcome=Deduction.Status.SUCCEEDED.label,
        )
    assert message.english() == "WeChat Pay now reports this failed deduction as succeeded; check it."
    assert zh(message) == "微信支付现在报告这笔失败的扣款为扣款成功，请核查。"


def test_a_lazy_template_is_stored_as_its_english_text():
    with translation.override("zh-hans"):
        message = Message(gettext_lazy("failed"))
    assert message.as_json() == {"m": "failed"}
    assert zh(message) == "失败"


def test_parameters_that_no_longer_fit_fall_back_to_the_stored_english_text():
    data = {"m": NEVER_RECEIVED, "p": {"reason": "ORDER_NOT_EXIST"}}  # "error" renamed since it was stored
    with translation.override("zh-hans"):
        assert rendered(data, "WeChat Pay never received this charge: ORDER_NOT_EXIST") == (
            "WeChat Pay never received this charge: ORDER_NOT_EXIST"
        )


@pytest.mark.parametrize("data", [{"p": {}}, {"m": 1}, {"m": "x", "p": {"a": [1]}}, "not json", {"m": "x", "p": 3}])
def test_what_is_not_a_stored_message_reads_as_the_stored_text(data):
    assert rendered(data, "as stored") == "as stored"


def test_a_row_without_a_message_reads_as_its_text():
    assert zh(rendered(None, "written before messages were stored")) == "written before messages were stored"


def test_a_validation_errors_own_messages_are_stored_as_messages():
    error = ValidationError(gettext_lazy("Give a whole number of fen, at least 1."))
    columns = error_columns(error)
    assert columns["last_error"] == "Give a whole number of fen, at least 1."
    assert zh(Message.from_json(columns["last_error_message"])) == zh(error.message) != columns["last_error"]


def test_joined_notes_are_each_rendered_and_nothing_joined_is_no_error():
    joined = Message.join([str(REFUSAL), Message(gettext_noop("Not sent: %(problem)s"), problem="x")])
    assert zh(joined) == f"{REFUSAL} 未发送：x"
    assert error_columns(Message.join([])) == {"last_error": "", "last_error_message": None}


# --- over the sandbox, in the admin ---------------------------------------------------------------


def never_received(signed_contract, sandbox, language):
    """A charge WeChat Pay never got, settled after its minute while ``language`` is active."""
    sandbox.fail_next("system_error")
    deduction = deduct(signed_contract, [MEMBERSHIP])
    with translation.override(language):
        settle(deduction, now=deduction.sent_at + wechatpay.DEDUCT_WINDOW + timedelta(seconds=1))
    assert deduction.status == Deduction.Status.FAILED
    return deduction


@pytest.mark.django_db
def test_a_failure_settled_in_english_reads_in_chinese_in_a_chinese_admin(
    signed_contract, sandbox, admin_client, settings
):
    deduction = never_received(signed_contract, sandbox, "en")
    settings.LANGUAGE_CODE = "zh-hans"
    changelist = admin_client.get(reverse("admin:django_papay_deduction_changelist")).content.decode()
    page = admin_client.get(reverse("admin:django_papay_deduction_change", args=[deduction.pk])).content.decode()
    for shown in (changelist, page):
        assert "微信支付未收到这笔扣款" in shown and "ORDER_NOT_EXIST" in shown
        assert "never received this charge" not in shown


@pytest.mark.django_db
def test_a_failure_settled_in_chinese_is_stored_in_english_and_read_in_english(
    signed_contract, sandbox, admin_client, settings
):
    deduction = never_received(signed_contract, sandbox, "zh-hans")
    assert deduction.last_error.startswith("WeChat Pay never received this charge: ORDER_NOT_EXIST")
    settings.LANGUAGE_CODE = "en-us"
    page = admin_client.get(reverse("admin:django_papay_deduction_change", args=[deduction.pk])).content.decode()
    assert "WeChat Pay never received this charge: ORDER_NOT_EXIST" in page
    assert "微信支付未收到这笔扣款" not in page


@pytest.mark.django_db
def test_a_correction_keeps_the_earlier_error_and_the_status_as_messages(signed_contract, sandbox):
    deduction = never_received(signed_contract, sandbox, "en")
    with translation.override("zh-hans"):
        correct_deduction(deduction, Deduction.Status.SUCCEEDED, at=timezone.now())
    deduction.refresh_from_db()
    assert deduction.last_error.startswith("WeChat Pay charged the user after this deduction was recorded failed")
    assert "(WeChat Pay never received this charge: ORDER_NOT_EXIST" in deduction.last_error
    shown = zh_error(deduction)
    assert "失败" in shown and "微信支付未收到这笔扣款：ORDER_NOT_EXIST" in shown


# --- through the notify pipeline (on PostgreSQL, its short way: the row read and written around the ORM) ----


@pytest.fixture
def abnormal(signed_contract, sandbox):
    """A refund WeChat Pay could not pay into the user's account, as its REFUND.ABNORMAL said."""
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = refund(deduct(signed_contract, [MEMBERSHIP]).sub_orders.get(), 500)
    assert deliver(sandbox.refund_notification(made.out_refund_no)).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.ABNORMAL
    return made


@pytest.mark.django_db
def test_a_notification_stores_its_message_and_another_keeps_it(abnormal, sandbox):
    assert zh_error(abnormal).startswith("微信支付无法退回用户账户（退款异常）")
    stored = abnormal.last_error_message
    assert deliver(sandbox.refund_notification(abnormal.out_refund_no)).status_code == 204  # ABNORMAL again
    abnormal.refresh_from_db()
    assert abnormal.last_error_message == stored  # written back as the message it was, not as its text


@pytest.mark.django_db
def test_a_failed_refund_reported_refunded_nests_its_earlier_message(abnormal, sandbox):
    Refund.objects.filter(pk=abnormal.pk).update(status=Refund.Status.FAILED)
    sandbox.finish_refund(abnormal.out_refund_no, notify=False)
    assert deliver(sandbox.refund_notification(abnormal.out_refund_no)).status_code == 204
    abnormal.refresh_from_db()
    assert abnormal.status == Refund.Status.SUCCEEDED
    assert abnormal.last_error.startswith("WeChat Pay refunded this refund after it was recorded failed (WeChat")
    assert zh_error(abnormal).startswith("该退款被记录为失败（微信支付无法退回用户账户（退款异常）")

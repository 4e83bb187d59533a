"""What a refund becomes when WeChat Pay's answer is lost, forged, refused or late: unknown is never failed, and an
unknown refund is sent again with the same number (refunded once), never with a new one."""

import pytest

from django_papay import wechatpay
from django_papay.exceptions import RefundStateError, WeChatPayError
from django_papay.models import Deduction, Refund
from django_papay.services import advance_refund, deduct, refund, retry_abnormal_refund, settle_refund
from django_papay.signals import refund_failed, refund_succeeded

from .helpers import MEMBERSHIP, SignalRecorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def membership(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


@pytest.fixture
def refunds():
    with SignalRecorder(succeeded=refund_succeeded, failed=refund_failed) as received:
        yield received


def taken(sandbox) -> int:
    """How many refunds the sandbox's WeChat Pay made."""
    return len(sandbox.refunds.dump()["refunds"])


def sent(sandbox, number: str) -> int:
    """How many applies for ``number`` reached the sandbox (faulted ones too)."""
    return sum(
        1 for r in sandbox.requests if r.path == wechatpay.REFUND_APPLY_PATH and r.json()["out_refund_no"] == number
    )


def settled(made: Refund) -> Refund:
    """Settle until WeChat Pay's result is known (a re-sent refund is accepted first, then settled)."""
    for _attempt in range(3):
        if made.status != Refund.Status.PROCESSING:
            break
        settle_refund(made)
    return made


# --- unknown: PROCESSING, settled with the same number ------------------------------------------------------


def test_a_timeout_after_the_refund_was_taken_stays_processing_then_settles_with_one_refund(membership, sandbox, papay):
    papay["TIMEOUT"] = (2.0, 0.5)
    sandbox.fault_delay = 1.5
    sandbox.fail_next("timeout")  # WeChat Pay takes the refund, the answer comes too late
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and made.last_error and not made.refund_id
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and made.refund_id
    assert taken(sandbox) == 1 and sandbox.refunds.posts == {made.out_refund_no: 1}


def test_a_refund_never_received_is_sent_again_with_the_same_number(membership, sandbox, refunds):
    sandbox.fail_next("system_error")  # refused before it was processed: WeChat Pay has no such refund
    made = refund(membership, 500)
    number = made.out_refund_no
    assert made.status == Refund.Status.PROCESSING and "SYSTEM_ERROR" in made.last_error
    settle_refund(made)  # the query finds nothing: the apply is sent again, same number
    assert made.out_refund_no == number and made.status == Refund.Status.PROCESSING and made.refund_id
    assert sent(sandbox, number) == 2 and taken(sandbox) == 1
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and refunds == [("succeeded", made.pk, None)]
    assert Refund.objects.count() == 1


def test_a_refund_taken_then_answered_500_is_settled_by_the_query(membership, sandbox):
    sandbox.fail_next("system_error_after")
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and sandbox.refunds.posts == {made.out_refund_no: 1}


@pytest.mark.parametrize("fault", ["reset", "ratelimit", "unavailable", "bad_signature", "unknown_serial", "not_json"])
def test_an_unknown_outcome_is_processing_never_failed(membership, sandbox, refunds, fault):
    sandbox.fail_next(fault)
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and made.last_error
    assert refunds == []
    assert settled(made).status == Refund.Status.SUCCEEDED and taken(sandbox) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda answer: answer.update(out_refund_no="R-SOMEONE-ELSE"),
        lambda answer: answer["amount"].update(refund=1),
        lambda answer: answer.update(refund_id="bad\x00id"),
    ],
    ids=["other number", "other amount", "unstorable id"],
)
def test_a_signed_answer_about_another_refund_is_no_answer(membership, sandbox, change):
    sandbox.alter_next(change)
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and not made.refund_id
    assert "ANSWER_" in made.error_code


def test_a_query_answer_about_another_refund_moves_nothing(membership, sandbox, refunds):
    made = refund(membership, 500)
    sandbox.alter_next(lambda answer: answer["amount"].update(refund=1500))
    with pytest.raises(WeChatPayError):
        settle_refund(made)
    assert made.status == Refund.Status.PROCESSING and refunds == []


# --- refused -------------------------------------------------------------------------------------------------


def test_a_signed_refusal_is_failed_with_its_signal_once(membership, sandbox, refunds):
    sandbox.answer_next(400, wechatpay.INVALID_REQUEST, "申请退款金额超过订单可退金额")
    made = refund(membership, 500)
    assert made.status == Refund.Status.FAILED and made.error_code == wechatpay.INVALID_REQUEST
    assert refunds == [("failed", made.pk, None)] and taken(sandbox) == 0
    settle_refund(made)
    assert refunds == [("failed", made.pk, None)]
    membership.refresh_from_db()
    assert membership.refundable_amount == 1500  # a failed refund holds nothing back


@pytest.mark.parametrize("status", [429, 403])
def test_frequency_limited_is_retried_later_not_failed(membership, sandbox, status):
    sandbox.answer_next(status, wechatpay.FREQUENCY_LIMITED, "请求频率过高")
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and made.error_code == wechatpay.FREQUENCY_LIMITED
    settle_refund(made)  # not at WeChat Pay: sent again, same number, and accepted
    assert made.status == Refund.Status.PROCESSING and sent(sandbox, made.out_refund_no) == 2


def test_not_enough_stays_retryable_with_the_error_shown_and_is_sent_again_with_the_same_number(membership, sandbox):
    sandbox.refunds.not_enough = True
    made = refund(membership, 500)
    assert made.status == Refund.Status.PROCESSING and made.error_code == wechatpay.NOT_ENOUGH
    assert "余额不足" in made.last_error and taken(sandbox) == 0
    settle_refund(made)  # still short
    assert made.error_code == wechatpay.NOT_ENOUGH
    sandbox.refunds.not_enough = False  # the sub-merchant's balance is topped up
    settle_refund(made)
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and sent(sandbox, made.out_refund_no) == 3


def test_not_enough_is_sent_again_as_advanced_when_staff_choose_it(membership, sandbox):
    sandbox.refunds.not_enough = True
    made = refund(membership, 500)
    advance_refund(made)
    assert made.advance and made.status == Refund.Status.PROCESSING and not made.error_code
    sent = [r.json() for r in sandbox.requests if r.path == wechatpay.REFUND_APPLY_PATH]
    assert [body["out_refund_no"] for body in sent] == [made.out_refund_no] * 2
    assert sent[1]["refund_account"] == wechatpay.REFUND_SOURCE_PARTNER_ADVANCE
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED


def test_only_a_not_enough_refund_is_sent_as_advanced(membership, sandbox):
    made = refund(membership, 500)
    with pytest.raises(RefundStateError):
        advance_refund(made)


# --- WeChat Pay's results ------------------------------------------------------------------------------------


def test_a_success_that_arrives_later(membership, sandbox, refunds):
    sandbox.refunds.outcome = wechatpay.REFUND_PROCESSING
    made = refund(membership, 500)
    settle_refund(made)
    assert made.status == Refund.Status.PROCESSING and made.refund_status == "PROCESSING" and refunds == []
    sandbox.finish_refund(made.out_refund_no, notify=False)
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED and refunds == [("succeeded", made.pk, None)]


def test_abnormal_is_shown_then_re_driven_to_success(membership, sandbox, refunds):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = refund(membership, 500)
    settle_refund(made)
    assert made.status == Refund.Status.ABNORMAL and made.abnormal_at is not None and made.last_error
    assert refunds == [("failed", made.pk, None)]
    retry_abnormal_refund(made)
    assert made.status == Refund.Status.PROCESSING
    (sent,) = [r for r in sandbox.requests if r.path.endswith("/apply-abnormal-refund")]
    assert sent.path == wechatpay.path(wechatpay.ABNORMAL_REFUND_PATH, refund_id=made.refund_id)
    assert sent.json() == {"sub_mchid": "1900000201", "out_refund_no": made.out_refund_no, "type": "MERCHANT_BANK_CARD"}
    settle_refund(made)
    assert made.status == Refund.Status.SUCCEEDED
    assert refunds == [("failed", made.pk, None), ("succeeded", made.pk, None)]


def test_only_an_abnormal_refund_is_retried(membership, sandbox):
    made = refund(membership, 500)
    with pytest.raises(RefundStateError):
        retry_abnormal_refund(made)


def test_a_failed_retry_leaves_it_abnormal_with_the_error(membership, sandbox):
    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = refund(membership, 500)
    settle_refund(made)
    sandbox.fail_next("system_error")
    with pytest.raises(WeChatPayError):
        retry_abnormal_refund(made)
    assert made.status == Refund.Status.ABNORMAL and "SYSTEM_ERROR" in made.last_error


@pytest.mark.parametrize("closed", ["CLOSED", "CLOSE"])
def test_closed_in_either_spelling_is_closed_and_gives_the_amount_back(membership, sandbox, refunds, closed):
    sandbox.refunds.outcome = wechatpay.REFUND_PROCESSING
    made = refund(membership, 1500)
    sandbox.alter_next(lambda answer: answer.update(status=closed))
    settle_refund(made)
    assert made.status == Refund.Status.CLOSED and made.refund_status == closed
    assert refunds == [("failed", made.pk, None)]
    membership.refresh_from_db()
    assert membership.refundable_amount == 1500


def test_an_unknown_status_is_stored_as_it_comes_and_stays_processing(membership, sandbox):
    made = refund(membership, 500)
    sandbox.alter_next(lambda answer: answer.update(status="SOMETHING_NEW"))
    settle_refund(made)
    assert made.status == Refund.Status.PROCESSING and made.refund_status == "SOMETHING_NEW"


def test_abnormal_again_after_a_retry_or_closed_after_it_sends_no_second_failed(membership, sandbox, refunds):
    from .helpers import deliver

    sandbox.refunds.outcome = wechatpay.REFUND_ABNORMAL
    made = settled(refund(membership, 500))
    assert made.status == Refund.Status.ABNORMAL
    sandbox.refunds.outcome = wechatpay.REFUND_PROCESSING  # the retry is taken, its result comes later
    retry_abnormal_refund(made)
    sandbox.finish_refund(made.out_refund_no, wechatpay.REFUND_ABNORMAL, notify=False)
    settle_refund(made)
    assert made.status == Refund.Status.ABNORMAL
    sandbox.finish_refund(made.out_refund_no, wechatpay.REFUND_CLOSED, notify=False)  # WeChat Pay gives up
    assert deliver(sandbox.refund_notification(made.out_refund_no)).status_code == 204
    made.refresh_from_db()
    assert made.status == Refund.Status.CLOSED
    assert refunds == [("failed", made.pk, None)]


def test_a_receiver_that_raises_undoes_nothing(membership, sandbox):
    from .helpers import failing_receiver

    made = refund(membership, 500)
    with failing_receiver(refund_succeeded, RuntimeError("the CRM is down")):
        settle_refund(made)
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED

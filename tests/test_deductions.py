"""Charging a signed contract over real HTTP to the sandbox: exactly once, and unknown is never failed."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from django_papay import wechatpay
from django_papay.display import local_time
from django_papay.exceptions import ContractStateError, DeductionStateError, WeChatPayError
from django_papay.models import Contract, Deduction, SubOrder
from django_papay.services import deduct, reverse_deduction, settle

from .helpers import MEMBERSHIP, deliver

pytestmark = pytest.mark.django_db

DELIVERY = {"sub_mchid": "1900000202", "description": "配送费", "amount": 300, "attach": "order 42"}


def posts(sandbox, path=wechatpay.DEDUCT_PATH):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == path]


def after_window(deduction, seconds=1):
    return deduction.sent_at + wechatpay.DEDUCT_WINDOW + timedelta(seconds=seconds)


# --- the request ----------------------------------------------------------------------------------


def test_deduct_sends_exactly_the_documented_json(signed_contract, sandbox, papay):
    deduction = deduct(
        signed_contract, [MEMBERSHIP, DELIVERY], combine_out_trade_no="P20261127A1", risk_info="ip:1.2.3.4;"
    )
    (sent,) = posts(sandbox)
    first, second = deduction.sub_orders.all()
    assert sent.json() == {
        "combine_appid": papay["APPID"],
        "combine_mchid": papay["MCHID"],
        "combine_out_trade_no": "P20261127A1",
        "contract_id": signed_contract.contract_id,
        "sub_orders": [
            {
                "mchid": papay["MCHID"],
                "sub_mchid": "1900000201",
                "out_trade_no": first.out_trade_no,
                "description": "会员月费",
                "amount": {"total_amount": 1500, "currency": "CNY"},
            },
            {
                "mchid": papay["MCHID"],
                "sub_mchid": "1900000202",
                "out_trade_no": second.out_trade_no,
                "description": "配送费",
                "attach": "order 42",
                "amount": {"total_amount": 300, "currency": "CNY"},
            },
        ],
        "risk_info": "ip:1.2.3.4;",
    }


def test_sub_risk_info_reaches_wechat_pay_exactly_as_given(signed_contract, sandbox):
    risk = "ip:1.2.3.4;device:iPhone%2015;"
    deduction = deduct(signed_contract, [{**MEMBERSHIP, "sub_risk_info": risk}, DELIVERY])
    (sent,) = posts(sandbox)
    first, second = sent.json()["sub_orders"]
    assert first["sub_risk_info"] == risk and "sub_risk_info" not in second
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert [sub_order.sub_risk_info for sub_order in deduction.sub_orders.all()] == [risk, ""]


def test_settle_info_is_sent_when_given(signed_contract, sandbox):
    deduct(signed_contract, [{**MEMBERSHIP, "profit_sharing": True, "subsidy_amount": 100}])
    (sent,) = posts(sandbox)
    assert sent.json()["sub_orders"][0]["settle_info"] == {"profit_sharing": True, "subsidy_amount": 100}


# --- success ----------------------------------------------------------------------------------------


def test_success_is_stored_per_sub_order_and_signalled_once(signed_contract, sandbox, charges):
    deduction = deduct(signed_contract, [MEMBERSHIP, DELIVERY])
    assert deduction.status == Deduction.Status.SUCCEEDED and deduction.settled_at is not None
    assert deduction.total_amount == 1800 and deduction.openid == signed_contract.openid
    for sub_order in deduction.sub_orders.all():
        assert sub_order.trade_state == "SUCCESS" and sub_order.transaction_id.startswith("4200")
        assert sub_order.bank_type == "OTHERS" and sub_order.success_time is not None
        assert sub_order.payer_amount == sub_order.amount
    assert charges == [("succeeded", deduction.pk, None)]
    settle(deduction)  # a settled deduction is returned as it is: no query, no second signal
    assert charges == [("succeeded", deduction.pk, None)]
    assert len(sandbox.requests) == 3  # pre-sign, query, deduct


# --- bad input: refused before anything is stored or sent ----------------------------------------------


@pytest.mark.parametrize(
    "sub_orders",
    [
        [],
        [MEMBERSHIP] * 51,
        [{**MEMBERSHIP, "amount": 15.0}],
        [{**MEMBERSHIP, "amount": Decimal("15.00")}],
        [{**MEMBERSHIP, "amount": 0}],
        [{**MEMBERSHIP, "amount": -100}],
        [{**MEMBERSHIP, "amount": True}],
        [{**MEMBERSHIP, "amount": "1500"}],
        [{"sub_mchid": "1900000201", "amount": 1500}],
        [{**MEMBERSHIP, "description": "x" * 128}],
        [{**MEMBERSHIP, "description": ""}],
        [{**MEMBERSHIP, "amount_yuan": 15}],
        [{**MEMBERSHIP, "sub_mchid": "merchant-1"}],
        [{**MEMBERSHIP, "out_trade_no": "has space"}],
        [{**MEMBERSHIP, "out_trade_no": "x" * 33}],
        [{**MEMBERSHIP, "attach": "x" * 129}],
        [{**MEMBERSHIP, "subsidy_amount": 1501}],
        [{**MEMBERSHIP, "profit_sharing": "yes"}],
        [{**MEMBERSHIP, "out_trade_no": "SAME"}, {**DELIVERY, "out_trade_no": "SAME"}],
        MEMBERSHIP,
        "1500",
    ],
    ids=lambda value: repr(value)[:40],
)
def test_bad_sub_orders_are_refused_with_nothing_stored_or_sent(signed_contract, sandbox, sub_orders):
    sent_before = len(sandbox.requests)
    with pytest.raises(ValidationError):
        deduct(signed_contract, sub_orders)
    assert not Deduction.objects.exists() and not SubOrder.objects.exists()
    assert len(sandbox.requests) == sent_before


@pytest.mark.parametrize(
    "options",
    [
        {"combine_out_trade_no": "has space"},
        {"combine_out_trade_no": "x" * 33},
        {"risk_info": "x" * 256},
    ],
)
def test_bad_numbers_are_refused_with_nothing_sent(signed_contract, sandbox, options):
    with pytest.raises(ValidationError):
        deduct(signed_contract, [MEMBERSHIP], **options)
    assert not Deduction.objects.exists() and not posts(sandbox)


@pytest.mark.parametrize("status", [Contract.Status.CREATED, Contract.Status.PRESIGNED, Contract.Status.TERMINATED])
def test_a_contract_that_is_not_signed_is_not_charged(signed_contract, sandbox, status):
    Contract.objects.filter(pk=signed_contract.pk).update(status=status)
    signed_contract.refresh_from_db()
    with pytest.raises(ContractStateError):
        deduct(signed_contract, [MEMBERSHIP])
    assert not Deduction.objects.exists() and not posts(sandbox)


def test_a_contract_signed_by_a_documented_sign_is_queried_for_its_contract_id_first(presigned_contract, sandbox):
    notification = sandbox.sign_notification(presigned_contract.out_contract_code)  # no contract_id, as documented
    sandbox.record(notification)
    assert deliver(notification).status_code == 204
    presigned_contract.refresh_from_db()
    assert presigned_contract.status == Contract.Status.SIGNED and presigned_contract.contract_id == ""
    deduction = deduct(presigned_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert [r.method for r in sandbox.requests][-2:] == ["GET", "POST"]
    presigned_contract.refresh_from_db()
    assert posts(sandbox)[0].json()["contract_id"] == presigned_contract.contract_id != ""


# --- exactly once --------------------------------------------------------------------------------------


def test_the_same_number_again_returns_the_deduction_and_sends_nothing(signed_contract, sandbox):
    first = deduct(signed_contract, [MEMBERSHIP], combine_out_trade_no="P1")
    again = deduct(signed_contract, [MEMBERSHIP], combine_out_trade_no="P1")
    assert again.pk == first.pk and again.status == Deduction.Status.SUCCEEDED
    assert len(posts(sandbox)) == 1 and sandbox.deductions.posts["P1"] == 1


@pytest.mark.parametrize(
    "change", [{"amount": 1600}, {"sub_mchid": "1900000299"}, {"description": "其他"}, {"sub_risk_info": "ip:1;"}]
)
def test_the_same_number_for_a_different_charge_is_refused(signed_contract, sandbox, change):
    deduct(signed_contract, [MEMBERSHIP], combine_out_trade_no="P1")
    with pytest.raises(ValidationError):
        deduct(signed_contract, [{**MEMBERSHIP, **change}], combine_out_trade_no="P1")
    assert len(posts(sandbox)) == 1


def test_the_deduction_is_committed_before_the_call(signed_contract, sandbox):
    sandbox.fail_next("reset")  # the call fails after it was sent: the rows must already be there
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert Deduction.objects.filter(pk=deduction.pk, status=Deduction.Status.PROCESSING).exists()
    assert deduction.sent_at is not None and deduction.sub_orders.count() == 1


# --- unknown is not failed -----------------------------------------------------------------------------


def test_a_read_timeout_after_the_charge_stays_processing_then_settles_succeeded(
    signed_contract, sandbox, papay, charges
):
    papay["DEDUCT_TIMEOUT"] = 0.5
    sandbox.fault_delay = 1.5
    sandbox.fail_next("timeout")  # WeChat Pay takes the charge, the answer comes too late
    deduction = deduct(signed_contract, [MEMBERSHIP, DELIVERY])
    assert deduction.status == Deduction.Status.PROCESSING and "TIMEOUT" in deduction.last_error
    assert charges == []
    settle(deduction)
    assert deduction.status == Deduction.Status.SUCCEEDED and deduction.last_error == ""
    assert all(s.transaction_id for s in deduction.sub_orders.all())
    assert sandbox.deductions.posts[deduction.combine_out_trade_no] == 1 and len(posts(sandbox)) == 1
    assert charges == [("succeeded", deduction.pk, None)]


def test_a_forged_answer_stays_processing_then_settles_succeeded(signed_contract, sandbox):
    sandbox.fail_next("bad_signature")
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING and "INVALID_RESPONSE_SIGNATURE" in deduction.last_error
    assert settle(deduction).status == Deduction.Status.SUCCEEDED
    assert len(posts(sandbox)) == 1


@pytest.mark.parametrize("fault", ["system_error_after", "other_contract"])
def test_a_charge_taken_but_answered_badly_is_never_failed(signed_contract, sandbox, fault):
    sandbox.fail_next(fault)
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    assert settle(deduction, now=after_window(deduction)).status == Deduction.Status.SUCCEEDED
    assert len(posts(sandbox)) == 1


@pytest.mark.parametrize("fault", ["system_error", "unavailable", "ratelimit", "reset"])
def test_a_charge_never_taken_waits_out_the_minute_then_fails(signed_contract, sandbox, fault, charges):
    sandbox.fail_next(fault)
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING
    settle(deduction, now=deduction.sent_at + timedelta(seconds=30))
    assert deduction.status == Deduction.Status.PROCESSING and "ORDER_NOT_EXIST" in deduction.last_error
    assert "has not received this charge" in deduction.last_error
    assert f"it becomes failed after {local_time(deduction.reachable_until + timedelta(minutes=1))}" in (
        deduction.last_error
    )
    settle(deduction, now=after_window(deduction))
    assert deduction.status == Deduction.Status.FAILED and "never received" in deduction.last_error
    assert charges == [("failed", deduction.pk, None)]
    assert len(posts(sandbox)) == 1


def test_settle_raises_and_keeps_processing_when_wechatpay_cannot_tell(signed_contract, sandbox):
    sandbox.fail_next("reset")
    deduction = deduct(signed_contract, [MEMBERSHIP])
    sandbox.fail_next("unavailable")
    with pytest.raises(Exception, match="SERVICE_UNAVAILABLE"):
        settle(deduction, now=after_window(deduction))
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.PROCESSING and "SERVICE_UNAVAILABLE" in deduction.last_error


# --- not final: wait, then reverse ---------------------------------------------------------------------


def test_accept_within_the_minute_waits_and_settles_when_wechatpay_finishes(signed_contract, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.PROCESSING and "ACCEPT" in deduction.last_error
    assert settle(deduction).status == Deduction.Status.PROCESSING
    sandbox.deductions.settle_later(deduction.combine_out_trade_no)
    assert settle(deduction).status == Deduction.Status.SUCCEEDED
    assert not posts(sandbox, wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction))


def test_accept_past_the_minute_is_reversed_with_every_sub_order(signed_contract, sandbox, charges, papay):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP, DELIVERY])
    settle(deduction, now=after_window(deduction))
    assert deduction.status == Deduction.Status.REVERSED
    (sent,) = posts(sandbox, wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction))
    assert sent.json() == {
        "combine_appid": papay["APPID"],
        "sub_orders": [
            {"mchid": papay["MCHID"], "sub_mchid": s.sub_mchid, "out_trade_no": s.out_trade_no}
            for s in deduction.sub_orders.all()
        ],
    }
    assert set(deduction.sub_orders.values_list("trade_state", flat=True)) == {"REVOKED"}
    assert charges == [("failed", deduction.pk, None)]
    settle(deduction, now=after_window(deduction, 120))  # settled: nothing more is sent
    assert len(posts(sandbox, sent.path)) == 1


def test_payerror_is_a_definitive_failure(signed_contract, sandbox):
    sandbox.deductions.trade_state = "PAYERROR"
    assert deduct(signed_contract, [MEMBERSHIP]).status == Deduction.Status.FAILED


def test_staff_reverse_of_a_processing_deduction(signed_contract, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = reverse_deduction(deduct(signed_contract, [MEMBERSHIP]))
    assert deduction.status == Deduction.Status.REVERSED
    with pytest.raises(DeductionStateError):
        reverse_deduction(deduction)


def test_a_reverse_that_failed_can_be_retried_at_once(signed_contract, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP])
    sandbox.fail_next("system_error")
    with pytest.raises(WeChatPayError):
        reverse_deduction(deduction)  # the call ended: nothing is in flight any more
    assert reverse_deduction(deduction).status == Deduction.Status.REVERSED


def test_a_reverse_in_flight_elsewhere_says_when_it_can_be_retried(signed_contract, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    deduction = deduct(signed_contract, [MEMBERSHIP])
    now = timezone.now()
    Deduction.objects.filter(pk=deduction.pk).update(reverse_requested_at=now - timedelta(seconds=10))
    with pytest.raises(DeductionStateError, match=r"sent 10 s ago\); .* can be retried in 20 s"):
        reverse_deduction(deduction, now=now)


def test_a_settled_deduction_cannot_be_reversed(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    with pytest.raises(DeductionStateError):
        reverse_deduction(deduction)
    assert not posts(sandbox, wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no=deduction))


# --- the contract ended ----------------------------------------------------------------------------------


def test_contract_not_exist_fails_the_charge_and_shows_the_contract_terminated(signed_contract, sandbox, charges):
    sandbox.terminate_contract(signed_contract.out_contract_code, drop=True)  # the user ended it; no notification came
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.FAILED and "CONTRACT_NOT_EXIST" in deduction.last_error
    signed_contract.refresh_from_db()
    assert signed_contract.status == Contract.Status.TERMINATED
    assert charges == [("failed", deduction.pk, None)]


def test_a_contract_with_deductions_cannot_be_deleted(signed_contract, sandbox):
    from django.db.models import ProtectedError

    deduct(signed_contract, [MEMBERSHIP])
    with pytest.raises(ProtectedError):
        signed_contract.delete()


# --- races -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_two_callers_racing_on_one_number_send_one_request(signed_contract, sandbox, attempt):
    from django.db import connection

    barrier = threading.Barrier(2)
    results = []

    def charge():
        try:
            barrier.wait()
            results.append(
                deduct(Contract.objects.get(pk=signed_contract.pk), [MEMBERSHIP], combine_out_trade_no="RACE1")
            )
        except Exception as exc:  # collected for the assertion below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=charge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(result, Deduction) for result in results), results
    assert {result.pk for result in results} == {Deduction.objects.get().pk}
    assert sandbox.deductions.posts["RACE1"] == 1 and len(posts(sandbox)) == 1
    assert Deduction.objects.get().status == Deduction.Status.SUCCEEDED

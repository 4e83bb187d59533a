"""Profit sharing over real HTTP to the sandbox: the exact request, balances to the fen, the cap, and an
unknown outcome sent again with the same number, never as a second share."""

import pytest
from django.core.exceptions import ValidationError

from django_papay import crypto, wechatpay
from django_papay.exceptions import SharingStateError
from django_papay.models import ProfitShare, SubOrder
from django_papay.services import deduct
from django_papay.services.sharing import finish_sharing, settle_share, share, unshared_amount
from django_papay.signals import share_failed, share_finished

from .helpers import (
    COMMISSION,
    MCHID,
    MEMBERSHIP,
    SHARED_MEMBERSHIP,
    SUB_MCHID,
    WECHATPAY_PUBLIC_KEY_ID,
    SignalRecorder,
)

pytestmark = pytest.mark.django_db


def charged(contract, item=SHARED_MEMBERSHIP) -> SubOrder:
    deduction = deduct(contract, [item])
    assert deduction.status == deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


def share_posts(sandbox, path=wechatpay.SHARE_ORDERS_PATH):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == path]


def platform_commission(sub_order):
    """A COMMISSION rule: 10 % to the platform."""
    return [{**COMMISSION, "amount": sub_order.amount // 10}]


@pytest.fixture
def recorded():
    with SignalRecorder(finished=share_finished, failed=share_failed) as received:
        yield received


# --- the request ----------------------------------------------------------------------------------


def test_share_sends_the_documented_json_with_receiver_name_encrypted_for_wechat_pay(signed_contract, sandbox, keys):
    sub_order = charged(signed_contract)
    stored = share(sub_order, [{**COMMISSION, "name": "示例平台有限公司"}])
    (sent,) = share_posts(sandbox)
    body = sent.json()
    ciphertext = body["receivers"][0].pop("receiver_name")
    assert body == {
        "sub_mchid": SUB_MCHID,
        "transaction_id": sub_order.transaction_id,
        "out_order_no": stored.out_order_no,
        "receivers": [{"type": "MERCHANT_ID", "receiver_account": MCHID, "amount": 150, "description": "平台佣金"}],
        "finish": True,
    }
    assert crypto.decrypt_sensitive(keys.wechatpay, ciphertext) == "示例平台有限公司"
    assert sent.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert sandbox.sharing.shares[stored.out_order_no]["receivers"][0]["receiver_name"] == "示例平台有限公司"


def test_a_receiver_name_under_platform_certificates_names_the_certificate(signed_contract, certified, sandbox):
    from django_papay.services import refresh_certificates

    refresh_certificates()
    sub_order = charged(signed_contract)
    share(sub_order, [{**COMMISSION, "name": "示例平台"}])
    (sent,) = share_posts(sandbox)
    assert sent.headers[wechatpay.SERIAL_HEADER] == certified.serial_no
    assert crypto.decrypt_sensitive(certified.private_key, sent.json()["receivers"][0]["receiver_name"]) == "示例平台"


# --- the money --------------------------------------------------------------------------------------


def test_a_charge_with_profit_sharing_lands_frozen(signed_contract, sandbox):
    charged(signed_contract)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1500, "available": 0}
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 0}


def test_share_and_finish_pay_the_platform_and_unfreeze_the_rest_to_the_fen(signed_contract, sandbox, recorded):
    sub_order = charged(signed_contract)
    stored = share(sub_order, [COMMISSION])
    assert stored.status == ProfitShare.Status.PROCESSING  # asynchronous, as WeChat Pay answers
    assert stored.receivers.get().result == wechatpay.RECEIVER_PENDING
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 150}
    settle_share(stored)
    assert stored.status == ProfitShare.Status.FINISHED and stored.order_id
    receiver = stored.receivers.get()
    assert receiver.result == wechatpay.RECEIVER_SUCCESS and receiver.detail_id and receiver.finish_time
    assert [fired.signal for fired in recorded] == ["finished"]
    settle_share(stored)  # final: nothing is asked or sent again
    assert [fired.signal for fired in recorded] == ["finished"]


def test_a_share_without_finish_leaves_the_rest_frozen_and_finishing_unfreezes_it(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    share(sub_order, [COMMISSION], finish=False)
    assert unshared_amount(sub_order) == 1350
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1350, "available": 0}
    finished = finish_sharing(sub_order)
    assert finished.kind == ProfitShare.Kind.FINISH and finished.status == ProfitShare.Status.FINISHED
    (sent,) = share_posts(sandbox, wechatpay.FINISH_ORDER_PATH)
    assert sent.json() == {
        "sub_mchid": SUB_MCHID,
        "transaction_id": sub_order.transaction_id,
        "out_order_no": finished.out_order_no,
        "description": "完结分账",
    }
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}
    assert unshared_amount(sub_order) == 0
    with pytest.raises(SharingStateError, match="finished"):
        finish_sharing(sub_order)


def test_no_commission_rule_only_finishes(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    done = share(sub_order)
    assert done.kind == ProfitShare.Kind.FINISH and not share_posts(sandbox)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1500}


def test_the_commission_rule_gives_the_receivers(signed_contract, sandbox, papay):
    papay["COMMISSION"] = "tests.test_sharing.platform_commission"
    sub_order = charged(signed_contract)
    share(sub_order)
    (sent,) = share_posts(sandbox)
    assert sent.json()["receivers"][0]["amount"] == 150


# --- refused before sending ---------------------------------------------------------------------------


def test_receivers_over_the_30_percent_cap_are_refused_with_nothing_sent(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    with pytest.raises(ValidationError, match="30 %"):
        share(sub_order, [{**COMMISSION, "amount": 451}])
    assert not share_posts(sandbox) and not ProfitShare.objects.exists()
    share(sub_order, [{**COMMISSION, "amount": 450}], finish=False)  # exactly the cap
    with pytest.raises(ValidationError, match="450 shared before"):
        share(settle_share(sub_order.shares.get()).sub_order, [{**COMMISSION, "amount": 1}])


@pytest.mark.parametrize(
    "receiver",
    [
        {**COMMISSION, "type": "BANK"},
        {**COMMISSION, "amount": True},
        {**COMMISSION, "amount": 1.5},
        {**COMMISSION, "amount": 0},
        {**COMMISSION, "account": "not-digits"},
        {**COMMISSION, "description": ""},
        {**COMMISSION, "description": "x" * 81},
        {**COMMISSION, "ratio": 0.1},
        {key: value for key, value in COMMISSION.items() if key != "account"},
        "MERCHANT_ID",
    ],
)
def test_malformed_receivers_are_refused_with_nothing_sent(signed_contract, sandbox, receiver):
    sub_order = charged(signed_contract)
    with pytest.raises(ValidationError):
        share(sub_order, [receiver])
    assert not share_posts(sandbox) and not ProfitShare.objects.exists()


def test_a_sub_order_charged_without_profit_sharing_is_never_shared(signed_contract, sandbox):
    sub_order = charged(signed_contract, MEMBERSHIP)
    with pytest.raises(SharingStateError, match="profit_sharing"):
        share(sub_order, [COMMISSION])
    assert not share_posts(sandbox)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1500}


# --- unknown outcomes and refusals ------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["system_error_after", "timeout", "reset", "bad_signature"])
def test_an_unknown_outcome_is_sent_again_with_the_same_number_never_as_a_second_share(
    signed_contract, sandbox, papay, fault, recorded
):
    papay["TIMEOUT"] = (2.0, 1.0)
    sandbox.fault_delay = 1.5
    sub_order = charged(signed_contract)
    sandbox.fail_next(fault)
    first = share(sub_order, [COMMISSION])
    assert first.status == ProfitShare.Status.PROCESSING and first.last_error and not recorded
    again = share(sub_order, [COMMISSION])
    assert again.pk == first.pk
    # Received (the query finds it) or not (sent again): only ever under its one number.
    assert {r.json()["out_order_no"] for r in share_posts(sandbox)} == {first.out_order_no}
    assert list(sandbox.sharing.shares) == [first.out_order_no]
    settle_share(again)
    assert again.status == ProfitShare.Status.FINISHED and ProfitShare.objects.count() == 1
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 150}  # paid once
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}


def test_a_share_wechat_pay_never_received_is_sent_again_by_settle(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    sandbox.fail_next("reset")
    first = share(sub_order, [COMMISSION])
    settle_share(first)  # the query finds nothing (404): sent again, same number
    assert [r.json()["out_order_no"] for r in share_posts(sandbox)] == [first.out_order_no] * 2
    assert sandbox.balance(MCHID)["available"] == 150


def test_only_a_signed_refusal_fails_a_share(signed_contract, sandbox, recorded):
    sub_order = charged(signed_contract)
    sandbox.answer_next(400, "INVALID_REQUEST", "分账金额超出最大分账比例")
    refused = share(sub_order, [COMMISSION])
    assert refused.status == ProfitShare.Status.FAILED and "分账" in refused.last_error
    assert [fired.signal for fired in recorded] == ["failed"]
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1500, "available": 0}
    again = share(sub_order, [COMMISSION])  # a failed share is over: a new one, a new number
    assert again.pk != refused.pk and again.out_order_no != refused.out_order_no


def test_frequency_limited_leaves_the_share_open(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    sandbox.answer_next(429, wechatpay.FREQUENCY_LIMITED)
    assert share(sub_order, [COMMISSION]).status == ProfitShare.Status.PROCESSING


def test_sharing_refuses_inside_an_atomic_block(signed_contract, sandbox):
    from django.db import transaction

    from django_papay.exceptions import InsideAtomicBlock

    sub_order = charged(signed_contract)
    with pytest.raises(InsideAtomicBlock), transaction.atomic():
        share(sub_order, [COMMISSION])
    assert not share_posts(sandbox)


def test_an_openid_receiver_is_sent_with_the_charges_appid(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    receiver = {
        "type": "PERSONAL_OPENID",
        "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "amount": 100,
        "description": "推广奖励",
    }
    share(sub_order, [receiver], finish=False)
    (sent,) = share_posts(sandbox)
    assert sent.json()["appid"] == sub_order.deduction.combine_appid
    assert sent.json()["receivers"][0]["type"] == "PERSONAL_OPENID"
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1400, "available": 0}


@pytest.mark.parametrize("key, value", [("COMMISSION", "no.such.rule"), ("SHARE_AFTER", -1), ("SHARE_AFTER", "soon")])
def test_a_malformed_sharing_setting_fails_the_system_check(papay, key, value):
    from django_papay.checks import check_settings

    papay[key] = value
    assert [message.id for message in check_settings() if key in message.msg] == ["django_papay.E014"]


def test_a_finish_with_an_unknown_outcome_is_sent_again_with_its_number(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    sandbox.fail_next("system_error_after")  # unfrozen at WeChat Pay, the answer lost
    first = finish_sharing(sub_order)
    assert first.status == ProfitShare.Status.PROCESSING
    again = finish_sharing(sub_order)
    assert again.pk == first.pk and again.status == ProfitShare.Status.FINISHED
    numbers = [r.json()["out_order_no"] for r in share_posts(sandbox, wechatpay.FINISH_ORDER_PATH)]
    assert numbers == [first.out_order_no] * 2
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1500}


def test_a_receiver_wechat_pay_closed_is_recorded_with_its_reason(signed_contract, sandbox, recorded):
    sub_order = charged(signed_contract)
    stored = share(sub_order, [COMMISSION])

    def closed(answer):
        answer["receivers"][0].update(result="CLOSED", fail_reason="ACCOUNT_ABNORMAL")

    sandbox.alter_next(closed)
    settle_share(stored)
    receiver = stored.receivers.get()
    assert receiver.result == "CLOSED" and receiver.fail_reason == "ACCOUNT_ABNORMAL"
    assert stored.status == ProfitShare.Status.FINISHED and "ACCOUNT_ABNORMAL" in stored.last_error
    assert [fired.signal for fired in recorded] == ["finished"]


def test_an_answer_about_another_share_is_no_answer(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    stored = share(sub_order, [COMMISSION])
    sandbox.alter_next(lambda answer: answer.update(out_order_no="someone-else"))
    settle_share(stored)
    assert stored.status == ProfitShare.Status.PROCESSING and "ANSWER_MISMATCH" in stored.last_error

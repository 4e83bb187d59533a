"""Refunds and profit sharing over real HTTP to the sandbox: a refund before sharing reduces what is shared;
refunding a shared sub-order returns the share first (分账回退), then refunds."""

import pytest
from django.core.exceptions import ValidationError

from django_papay import wechatpay
from django_papay.exceptions import SharingStateError
from django_papay.models import Refund, ShareReturn
from django_papay.services import deduct, refund
from django_papay.services.sharing import finish_sharing, settle_share, share

from .helpers import COMMISSION, MCHID, SHARED_MEMBERSHIP, SUB_MCHID

pytestmark = pytest.mark.django_db


def charged(contract):
    return deduct(contract, [SHARED_MEMBERSHIP]).sub_orders.get()


def shared(contract, amount=150):
    sub_order = charged(contract)
    settle_share(share(sub_order, [{**COMMISSION, "amount": amount}]))
    return sub_order


def posts(sandbox):
    return [r.path for r in sandbox.requests if r.method == "POST" and "combine-papay" not in r.path]


def test_a_refund_before_sharing_reduces_what_is_shared(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    refund(sub_order, 500)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1000, "available": 0}  # out of the frozen funds
    with pytest.raises(ValidationError, match="300 fen"):  # 30 % of the 1000 left
        share(sub_order, [{**COMMISSION, "amount": 301}])
    settle_share(share(sub_order, [{**COMMISSION, "amount": 300}]))
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 700}
    assert sandbox.balance(MCHID)["available"] == 300


def test_refunding_a_shared_sub_order_returns_the_share_first(signed_contract, sandbox):
    sub_order = shared(signed_contract)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}
    made = refund(sub_order, 1500)
    assert made.status != Refund.Status.FAILED
    assert posts(sandbox)[-2:] == [wechatpay.RETURN_ORDERS_PATH, wechatpay.REFUND_APPLY_PATH]
    returned = ShareReturn.objects.get()
    assert returned.amount == 150 and returned.return_mchid == MCHID and returned.result == ShareReturn.Result.SUCCESS
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 0}
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 0}


def test_a_partial_refund_the_sub_merchants_part_covers_returns_nothing(signed_contract, sandbox):
    sub_order = shared(signed_contract)
    refund(sub_order, 1000)
    assert not ShareReturn.objects.exists() and wechatpay.RETURN_ORDERS_PATH not in posts(sandbox)
    refund(sub_order, 500)  # 350 left with the sub-merchant: 150 comes back first
    assert ShareReturn.objects.get().amount == 150
    assert sandbox.balance(SUB_MCHID)["available"] == 0 and sandbox.balance(MCHID)["available"] == 0


def test_a_refund_waits_for_a_return_whose_outcome_is_unknown(signed_contract, sandbox):
    sub_order = shared(signed_contract)
    sandbox.fail_next("reset")  # the return never reaches WeChat Pay
    with pytest.raises(SharingStateError, match="waits"):
        refund(sub_order, 1500)
    assert not Refund.objects.exists() and wechatpay.REFUND_APPLY_PATH not in posts(sandbox)
    refund(sub_order, 1500)  # the open return is settled (sent again, same number), then the refund
    (returned,) = ShareReturn.objects.all()
    assert returned.result == ShareReturn.Result.SUCCESS and Refund.objects.count() == 1
    numbers = [r.json()["out_return_no"] for r in sandbox.requests if r.method == "POST" and "returnorders" in r.path]
    assert numbers == [returned.out_return_no] * 2


def test_wechat_pay_refuses_to_refund_shared_money_not_returned(signed_contract, sandbox, merchant):
    sub_order = shared(signed_contract)
    body = {
        "sub_mchid": SUB_MCHID,
        "sp_appid": "wxd678efh567hg6787",
        "transaction_id": sub_order.transaction_id,
        "out_refund_no": "R20261202A1",
        "amount": {"refund": 1500, "total": 1500, "currency": "CNY"},
    }
    answer = merchant.post(body, path=wechatpay.REFUND_APPLY_PATH)
    assert answer.json()["code"] == wechatpay.NOT_ENOUGH and "分账回退" in answer.json()["message"]


def test_finishing_after_a_refund_unfreezes_only_what_is_left(signed_contract, sandbox):
    sub_order = charged(signed_contract)
    refund(sub_order, 400)
    finish_sharing(sub_order)
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1100}

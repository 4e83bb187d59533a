"""Subsidies paid before sharing, and shares returned (分账回退), over real HTTP to the sandbox, to the fen."""

import pytest
from django.core.exceptions import ValidationError

from django_papay import wechatpay
from django_papay.exceptions import SharingStateError
from django_papay.models import ProfitShare, ShareReturn, Subsidy
from django_papay.services import deduct
from django_papay.services.share_returns import return_share, settle_return
from django_papay.services.sharing import settle_share, share
from django_papay.services.subsidies import pay_subsidy

from .helpers import COMMISSION, MCHID, SHARED_MEMBERSHIP, SUB_MCHID

pytestmark = pytest.mark.django_db

SUBSIDISED = {**SHARED_MEMBERSHIP, "subsidy_amount": 100}


def charged(contract, item=SHARED_MEMBERSHIP):
    return deduct(contract, [item]).sub_orders.get()


def paths(sandbox):
    return [(r.method, r.path.split("?")[0]) for r in sandbox.requests if "combine-papay" not in r.path]


def finished_share(contract):
    stored = share(charged(contract), [COMMISSION])
    return settle_share(stored)


# --- subsidies ---------------------------------------------------------------------------------------


def test_a_subsidised_sub_order_pays_its_subsidy_before_it_is_shared(signed_contract, sandbox):
    sub_order = charged(signed_contract, SUBSIDISED)
    share(sub_order, [COMMISSION])
    assert paths(sandbox) == [("POST", wechatpay.SUBSIDY_CREATE_PATH), ("POST", wechatpay.SHARE_ORDERS_PATH)]
    subsidy = Subsidy.objects.get()
    assert subsidy.result == Subsidy.Result.SUCCESS and subsidy.amount == 100 and subsidy.subsidy_id
    subsidy_request = sandbox.requests[-2].json()
    assert subsidy_request == {
        "sub_mchid": SUB_MCHID,
        "transaction_id": sub_order.transaction_id,
        "amount": 100,
        "description": "补差",
        "out_subsidy_no": subsidy.out_subsidy_no,
    }
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1450}  # 1500 + 100 subsidy − 150 shared
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 50}  # 150 commission − 100 subsidy


def test_wechat_pay_refuses_to_share_before_the_subsidy_arrived(signed_contract, sandbox, merchant):
    sub_order = charged(signed_contract, SUBSIDISED)
    body = {
        "sub_mchid": SUB_MCHID,
        "transaction_id": sub_order.transaction_id,
        "out_order_no": "S1",
        "receivers": [{"type": "MERCHANT_ID", "receiver_account": MCHID, "amount": 150, "description": "佣金"}],
        "finish": True,
    }
    answer = merchant.post(body, path=wechatpay.SHARE_ORDERS_PATH)
    assert answer.status_code == 400 and answer.json()["message"] == "分账补贴还未到账，不能受理分账"


def test_a_subsidy_with_an_unknown_outcome_is_sent_again_with_its_number_and_paid_once(signed_contract, sandbox):
    sub_order = charged(signed_contract, SUBSIDISED)
    sandbox.fail_next("system_error_after")
    with pytest.raises(SharingStateError, match="subsidy"):
        share(sub_order, [COMMISSION])  # nothing shared while the subsidy is unknown
    assert Subsidy.objects.get().result == Subsidy.Result.PROCESSING
    share(sub_order, [COMMISSION])
    numbers = [r.json()["out_subsidy_no"] for r in sandbox.requests if r.path == wechatpay.SUBSIDY_CREATE_PATH]
    assert numbers == [Subsidy.objects.get().out_subsidy_no] * 2
    assert sandbox.balance(MCHID)["available"] == 50  # one subsidy of 100


def test_a_paid_subsidy_is_not_paid_again(signed_contract, sandbox):
    sub_order = charged(signed_contract, SUBSIDISED)
    first = pay_subsidy(sub_order)
    assert pay_subsidy(sub_order).pk == first.pk
    assert len([r for r in sandbox.requests if r.path == wechatpay.SUBSIDY_CREATE_PATH]) == 1


# --- returns -----------------------------------------------------------------------------------------


def test_returning_a_share_gives_the_sub_merchant_its_money_back(signed_contract, sandbox):
    stored = finished_share(signed_contract)
    returned = return_share(stored, 150)
    assert returned.result == ShareReturn.Result.SUCCESS and returned.return_id
    (sent,) = [r for r in sandbox.requests if r.path == wechatpay.RETURN_ORDERS_PATH]
    assert sent.json() == {
        "sub_mchid": SUB_MCHID,
        "out_order_no": stored.out_order_no,
        "out_return_no": returned.out_return_no,
        "return_mchid": MCHID,
        "amount": 150,
        "description": "分账回退",
    }
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 0}
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1500}


def test_more_than_was_shared_is_never_returned(signed_contract, sandbox):
    stored = finished_share(signed_contract)
    return_share(stored, 100)
    with pytest.raises(ValidationError, match="holds 50 fen"):
        return_share(stored, 51)
    assert len([r for r in sandbox.requests if r.path == wechatpay.RETURN_ORDERS_PATH]) == 1


def test_only_a_finished_share_is_returned(signed_contract, sandbox):
    stored = share(charged(signed_contract), [COMMISSION])
    assert stored.status == ProfitShare.Status.PROCESSING
    with pytest.raises(SharingStateError, match="finished"):
        return_share(stored, 150)


def test_a_return_with_an_unknown_outcome_is_settled_under_its_number(signed_contract, sandbox):
    stored = finished_share(signed_contract)
    sandbox.fail_next("reset")
    returned = return_share(stored, 150)
    assert returned.result == ShareReturn.Result.PROCESSING and returned.last_error
    settle_return(returned)  # not received (404): sent again, same number
    assert returned.result == ShareReturn.Result.SUCCESS
    numbers = [r.json()["out_return_no"] for r in sandbox.requests if r.method == "POST" and "returnorders" in r.path]
    assert numbers == [returned.out_return_no] * 2
    assert sandbox.balance(MCHID)["available"] == 0

"""The sandbox's deduction endpoints, called with the real client: WeChat Pay's checks and answers."""

import pytest

from django_papay import wechatpay
from django_papay.exceptions import WeChatPayError
from django_papay.models import Contract
from django_papay.services.connections import get_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def charge(papay, signed_contract):
    """A valid deduct body for a contract the sandbox knows as signed."""
    return {
        "combine_appid": papay["APPID"],
        "combine_mchid": papay["MCHID"],
        "combine_out_trade_no": "C1",
        "contract_id": signed_contract.contract_id,
        "sub_orders": [
            {
                "mchid": papay["MCHID"],
                "sub_mchid": "1900000201",
                "out_trade_no": "S1",
                "description": "会员月费",
                "amount": {"total_amount": 1500, "currency": "CNY"},
            }
        ],
    }


def _refused(body, status, code):
    with pytest.raises(WeChatPayError) as raised:
        get_client().post(wechatpay.DEDUCT_PATH, body)
    assert (raised.value.status, raised.value.code) == (status, code)
    return raised.value


def test_a_charge_is_answered_and_kept_for_the_query(charge, sandbox):
    answer = get_client().post(wechatpay.DEDUCT_PATH, charge).data
    (sub,) = answer["sub_orders"]
    assert answer["combine_out_trade_no"] == "C1" and sub["trade_state"] == "SUCCESS" and sub["trade_type"] == "PAP"
    assert get_client().get(wechatpay.path(wechatpay.DEDUCTION_PATH, combine_out_trade_no="C1")).data == answer


def test_a_sub_order_may_carry_sub_risk_info_text(charge, sandbox):
    (sub_order,) = charge["sub_orders"]
    get_client().post(wechatpay.DEDUCT_PATH, {**charge, "sub_orders": [{**sub_order, "sub_risk_info": "ip:1.2.3.4;"}]})
    _refused(
        {
            **charge,
            "combine_out_trade_no": "C2",
            "sub_orders": [{**sub_order, "out_trade_no": "S2", "sub_risk_info": 42}],
        },
        400,
        "PARAM_ERROR",
    )


def test_a_number_received_before_is_refused_and_every_post_counted(charge, sandbox):
    get_client().post(wechatpay.DEDUCT_PATH, charge)
    _refused(charge, 400, "INVALID_REQUEST")
    _refused({**charge, "combine_out_trade_no": "C2"}, 400, "INVALID_REQUEST")  # its out_trade_no is taken
    assert sandbox.deductions.posts == {"C1": 2, "C2": 1}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"combine_out_trade_no": "has space"}, "combine_out_trade_no"),
        ({"sub_orders": []}, "sub_orders"),
        ({"contract_id": 42}, "contract_id"),
        ({"risk_info": "x" * 256}, "risk_info"),
        (
            {
                "sub_orders": [
                    {
                        "mchid": "1",
                        "sub_mchid": "2",
                        "out_trade_no": "S",
                        "description": "d",
                        "amount": {"total_amount": 1.5, "currency": "CNY"},
                    }
                ]
            },
            "sub_orders",
        ),
        (
            {
                "sub_orders": [
                    {
                        "mchid": "1",
                        "sub_mchid": "2",
                        "out_trade_no": "S",
                        "description": "d",
                        "amount": {"total_amount": 100, "currency": "USD"},
                    }
                ]
            },
            "sub_orders",
        ),
    ],
)
def test_each_field_is_checked(charge, change, field):
    error = _refused({**charge, **change}, 400, "PARAM_ERROR")
    assert error.detail["field"] == field


def test_a_terminated_or_unknown_contract_answers_contract_not_exist(charge, sandbox):
    _refused({**charge, "contract_id": "NOSUCHCONTRACT"}, 400, "CONTRACT_NOT_EXIST")
    code = Contract.objects.get().out_contract_code
    sandbox.terminate_contract(code, drop=True)
    _refused(charge, 400, "CONTRACT_NOT_EXIST")


def test_query_and_reverse_of_an_unknown_number_answer_404(charge):
    for call in (
        lambda: get_client().get(wechatpay.path(wechatpay.DEDUCTION_PATH, combine_out_trade_no="NO")),
        lambda: get_client().post(
            wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no="NO"), {"combine_appid": "a", "sub_orders": []}
        ),
    ):
        with pytest.raises(WeChatPayError) as raised:
            call()
        assert (raised.value.status, raised.value.code) == (404, "ORDER_NOT_EXIST")


def test_reverse_names_every_sub_order_and_answers_204(charge, papay, sandbox):
    sandbox.deductions.trade_state = "ACCEPT"
    get_client().post(wechatpay.DEDUCT_PATH, charge)
    path = wechatpay.path(wechatpay.REVERSE_PATH, combine_out_trade_no="C1")
    sub = {"mchid": papay["MCHID"], "sub_mchid": "1900000201", "out_trade_no": "S1"}
    with pytest.raises(WeChatPayError) as raised:
        get_client().post(path, {"combine_appid": papay["APPID"], "sub_orders": [{**sub, "out_trade_no": "S9"}]})
    assert raised.value.code == "PARAM_ERROR"
    answer = get_client().post(path, {"combine_appid": papay["APPID"], "sub_orders": [sub]})
    assert (answer.status, answer.data) == (204, {})
    assert sandbox.deductions.get("C1")["sub_orders"][0]["trade_state"] == "REVOKED"

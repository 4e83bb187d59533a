"""The sandbox's profit sharing, called directly: the rules WeChat Pay keeps, whoever calls."""

import pytest

from django_papay import crypto, wechatpay
from django_papay.services import deduct

from .helpers import MCHID, MEMBERSHIP, SHARED_MEMBERSHIP, SUB_MCHID, WECHATPAY_PUBLIC_KEY_ID

pytestmark = pytest.mark.django_db


def charged(contract, item=SHARED_MEMBERSHIP):
    return deduct(contract, [item]).sub_orders.get()


def body(sub_order, *receivers, number="S20261202A1", finish=False):
    return {
        "sub_mchid": SUB_MCHID,
        "transaction_id": sub_order.transaction_id,
        "out_order_no": number,
        "receivers": list(receivers)
        or [{"type": "MERCHANT_ID", "receiver_account": MCHID, "amount": 150, "description": "平台佣金"}],
        "finish": finish,
    }


def named(key, name="示例平台"):
    receiver = {"type": "MERCHANT_ID", "receiver_account": MCHID, "amount": 150, "description": "平台佣金"}
    return {**receiver, "receiver_name": crypto.encrypt_sensitive(key, name)}


def post(merchant, payload, serial=WECHATPAY_PUBLIC_KEY_ID):
    headers = {wechatpay.SERIAL_HEADER: serial or None}  # None: requests leaves the header out
    return merchant.post(payload, path=wechatpay.SHARE_ORDERS_PATH, headers=headers)


def test_receiver_name_is_opened_with_the_key_wechatpay_serial_names(signed_contract, merchant, sandbox, keys):
    sub_order = charged(signed_contract)
    answer = post(merchant, body(sub_order, named(keys.wechatpay.public_key())))
    assert answer.status_code == 200, answer.text
    assert sandbox.sharing.shares["S20261202A1"]["receivers"][0]["receiver_name"] == "示例平台"
    assert "receiver_name" not in answer.json()["receivers"][0]


def test_a_name_encrypted_under_another_key_is_refused(signed_contract, merchant, sandbox, keys):
    sub_order = charged(signed_contract)
    answer = post(merchant, body(sub_order, named(keys.stranger.public_key())))
    assert answer.status_code == 400 and "解密失败" in answer.json()["message"]
    assert not sandbox.sharing.shares and sandbox.balance(MCHID)["available"] == 0


@pytest.mark.parametrize("serial", ["", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"])
def test_a_name_without_a_known_wechatpay_serial_is_refused(signed_contract, merchant, sandbox, keys, serial):
    sub_order = charged(signed_contract)
    answer = post(merchant, body(sub_order, named(keys.wechatpay.public_key())), serial=serial)
    assert answer.status_code == 400 and answer.json()["code"] == wechatpay.PARAM_ERROR
    assert "Wechatpay-Serial" in answer.json()["message"]


def test_more_than_30_percent_is_refused(signed_contract, merchant, sandbox):
    sub_order = charged(signed_contract)
    receiver = {"type": "MERCHANT_ID", "receiver_account": MCHID, "amount": 451, "description": "佣金"}
    answer = post(merchant, body(sub_order, receiver))
    assert answer.status_code == 400 and "最大分账比例" in answer.json()["message"]
    assert sandbox.balance(SUB_MCHID) == {"frozen": 1500, "available": 0}


def test_an_order_charged_without_profit_sharing_is_refused(signed_contract, merchant):
    sub_order = charged(signed_contract, MEMBERSHIP)
    answer = post(merchant, body(sub_order))
    assert answer.status_code == 400 and answer.json()["message"] == "非分账订单不支持分账"


def test_a_share_is_processing_then_finished_on_the_next_query(signed_contract, merchant, sandbox):
    sub_order = charged(signed_contract)
    first = post(merchant, body(sub_order)).json()
    assert first["status"] == "PROCESSING" and first["receivers"][0]["result"] == "PENDING"
    again = post(merchant, body(sub_order)).json()  # the same number is the same request
    assert again == first and sandbox.sharing.posts["S20261202A1"] == 2
    query = f"sub_mchid={SUB_MCHID}&transaction_id={sub_order.transaction_id}&out_order_no=S20261202A1"
    path = f"{wechatpay.SHARE_ORDERS_PATH}?{query}"
    queried = merchant.post(method="GET", path=path).json()
    assert queried["status"] == "FINISHED" and queried["receivers"][0]["result"] == "SUCCESS"
    assert sandbox.balance(MCHID)["available"] == 150


def test_after_finishing_nothing_more_is_shared(signed_contract, merchant, sandbox):
    sub_order = charged(signed_contract)
    post(merchant, body(sub_order, finish=True))
    answer = post(merchant, body(sub_order, number="S20261202A2"))
    assert answer.status_code == 400 and "完结" in answer.json()["message"]


def test_the_sharing_book_survives_a_restart(signed_contract, merchant, sandbox, tmp_path):
    from django_papay.sandbox.sharing_book import SharingBook

    sub_order = charged(signed_contract)
    post(merchant, body(sub_order, finish=True))
    copy = SharingBook(sandbox.deductions.paid)
    copy.load(sandbox.sharing.dump())
    assert copy.balance(SUB_MCHID) == sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}


def test_balances_can_be_read_over_http(signed_contract, sandbox):
    import requests

    charged(signed_contract)
    answer = requests.get(f"{sandbox.url}/sandbox/balances/{SUB_MCHID}", timeout=5).json()
    assert answer == {"mchid": SUB_MCHID, "frozen": 1500, "available": 0}

"""The sandbox's bills as a merchant meets them over HTTP: the bill request signed and checked, the file unsigned
with its SHA1 as named, the URL expiring, "not ready", one sub-merchant's rows, and the client refusing a
download URL on another host."""

import gzip
import hashlib
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from django_papay import wechatpay
from django_papay.models import Reconciliation
from django_papay.services import deduct, reconcile
from django_papay.services.bills import trade_bill_path

from .helpers import MCHID, MEMBERSHIP
from .sandbox_merchant import assert_error

TODAY = datetime.now(wechatpay.BEIJING).date()


def paid(sandbox, sub_mchid="1900000201", amount=1500, at=None):
    return sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid=sub_mchid, amount=amount, at=at)


def bill(merchant, day=TODAY, sub_mchid=None):
    return merchant.post(path=trade_bill_path(day, sub_mchid), method="GET")


def test_the_bill_answer_is_signed_and_the_file_is_not_but_matches_its_sha1(merchant, sandbox):
    row = paid(sandbox)
    answer = bill(merchant)
    assert answer.status_code == 200 and merchant.verifies(answer)
    data = answer.json()
    assert data["hash_type"] == "SHA1" and data["download_url"].startswith(sandbox.url + wechatpay.BILL_DOWNLOAD_PATH)
    download = merchant.post(path=data["download_url"][len(sandbox.url) :], method="GET")
    assert download.status_code == 200 and wechatpay.SIGNATURE_HEADER not in download.headers
    text = gzip.decompress(download.content)
    assert hashlib.sha1(text).hexdigest() == data["hash_value"]  # noqa: S324 - WeChat Pay's hash
    lines = text.decode("utf-8").splitlines()
    assert lines[0].startswith("交易时间,") and lines[1].startswith("`")
    assert f"`{row['商户订单号']}" in lines[1] and lines[-2].startswith("总交易单数")


def test_a_bill_request_must_be_signed_by_the_merchant(merchant, sandbox, keys):
    paid(sandbox)
    answer = merchant.post(path=trade_bill_path(TODAY), method="GET", key=keys.stranger)
    assert_error(merchant, answer, 401, wechatpay.SIGN_ERROR)


def test_a_download_url_expires(merchant, sandbox):
    paid(sandbox)
    sandbox.bills.download_lifetime = 0
    url = bill(merchant).json()["download_url"]
    assert_error(merchant, merchant.post(path=url[len(sandbox.url) :], method="GET"), 400, wechatpay.INVALID_REQUEST)


def test_not_ready_is_answered_as_many_times_as_asked(merchant, sandbox):
    paid(sandbox)
    sandbox.bills.not_ready, sandbox.bills.not_ready_times = wechatpay.STATEMENT_CREATING, 2
    assert_error(merchant, bill(merchant), 400, wechatpay.STATEMENT_CREATING)
    assert_error(merchant, bill(merchant), 400, wechatpay.STATEMENT_CREATING)
    assert bill(merchant).status_code == 200


def test_a_day_without_trades_has_no_statement(merchant, sandbox):
    paid(sandbox, at=datetime.now(wechatpay.BEIJING) - timedelta(days=1))
    assert_error(merchant, bill(merchant), 400, wechatpay.NO_STATEMENT_EXIST)


def test_one_sub_merchants_bill_has_only_its_rows(merchant, sandbox):
    paid(sandbox, "1900000201")
    other = paid(sandbox, "1900000202")
    url = bill(merchant, sub_mchid="1900000202").json()["download_url"]
    text = gzip.decompress(merchant.post(path=url[len(sandbox.url) :], method="GET").content).decode()
    assert text.count("`1900000202") == 1 and "`1900000201" not in text and other["商户订单号"] in text


@pytest.mark.django_db
def test_the_client_refuses_a_download_url_on_another_host(signed_contract, sandbox, papay):
    deduct(signed_contract, [MEMBERSHIP])

    def elsewhere(data):
        data["download_url"] = "https://files.example" + wechatpay.BILL_DOWNLOAD_PATH + "?token=x"

    sandbox.alter_next(elsewhere)
    report = reconcile(timezone.now().astimezone(wechatpay.BEIJING).date())
    assert report.status == Reconciliation.Status.FAILED and "not on WeChat Pay's API host" in report.error
    assert not [r for r in sandbox.requests if r.path.startswith(wechatpay.BILL_DOWNLOAD_PATH)]


@pytest.mark.django_db
def test_a_bill_answer_without_its_hash_fails_the_run(signed_contract, sandbox, papay):
    deduct(signed_contract, [MEMBERSHIP])
    sandbox.alter_next(lambda data: data.pop("hash_value"))
    report = reconcile(timezone.now().astimezone(wechatpay.BEIJING).date())
    assert report.status == Reconciliation.Status.FAILED and "INVALID_BILL_ANSWER" in report.error

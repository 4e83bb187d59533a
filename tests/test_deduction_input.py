"""Odd input to deduct and deduct_many: refused before anything is stored or sent, over real HTTP to
the sandbox, on SQLite and PostgreSQL alike (PostgreSQL refuses a NUL itself, with a raw DataError)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from django_papay import tasks, wechatpay
from django_papay.dispatch import deduct_many, send_run
from django_papay.exceptions import ContractStateError
from django_papay.models import BillingRun, Contract, Deduction, SubOrder
from django_papay.services import Charge, deduct
from django_papay.services.deductions import store

from .helpers import MEMBERSHIP

pytestmark = pytest.mark.django_db

# Every field a caller can give, so that changing any one of them is a different charge.
FULL = {
    **MEMBERSHIP,
    "attach": "order 42",
    "sub_appid": "wxd678efh567hg6788",
    "profit_sharing": False,
    "subsidy_amount": 100,
    "sub_risk_info": "ip:1.2.3.4;",
}


def posts(sandbox):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == wechatpay.DEDUCT_PATH]


def assert_nothing_stored_or_sent(sandbox):
    assert not Deduction.objects.exists() and not SubOrder.objects.exists()
    assert not posts(sandbox)


# --- a sub-order's text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"description": "会员\x00月费"},
        {"description": "会员\x01月费"},
        {"description": "会员月费\n"},
        {"description": "会员\x7f月费"},
        {"description": "会员\x85月费"},
        {"description": "会员\ud800月费"},
        {"description": {"a": 1}},
        {"description": 1500},
        {"attach": "order\x0042"},
        {"attach": "order \udfff"},
        {"attach": {"a": 1}},
        {"attach": 42},
        {"out_trade_no": 12345},
        {"sub_appid": "wx 1"},
        {"sub_appid": "wx\x001"},
        {"sub_appid": "wx1\n"},
        {"sub_appid": 12345},
        {"sub_risk_info": "ip:1.2.3.4;\x00"},
        {"sub_risk_info": "ip:1.2.3.4;\r\n"},
        {"sub_risk_info": "ip:\ud83d;"},
        {"sub_risk_info": "x" * 256},
        {"sub_risk_info": {"ip": "1.2.3.4"}},
    ],
    ids=repr,
)
def test_bad_sub_order_text_is_refused_with_nothing_stored_or_sent(signed_contract, sandbox, change):
    with pytest.raises(ValidationError):
        deduct(signed_contract, [{**MEMBERSHIP, **change}])
    assert_nothing_stored_or_sent(sandbox)


@pytest.mark.parametrize(
    "options",
    [
        {"risk_info": "ip:1.2.3.4;\x00"},
        {"risk_info": "ip:1.2.3.4;\r\n"},
        {"risk_info": "ip:\ud83d;"},
        {"combine_out_trade_no": "P1\x00"},
        {"combine_out_trade_no": 12345},
        {"combine_appid": 12345},
    ],
    ids=repr,
)
def test_bad_charge_text_is_refused_with_nothing_stored_or_sent(signed_contract, sandbox, options):
    with pytest.raises(ValidationError):
        deduct(signed_contract, [MEMBERSHIP], **options)
    assert_nothing_stored_or_sent(sandbox)


# --- amounts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 10_000_001},
        {"amount": 2**31},
        {"amount": 2**53 + 1},
        {"amount": 2**63 - 1},
        {"amount": 2**63 - 1, "subsidy_amount": 2**63 - 1},
    ],
    ids=repr,
)
def test_an_amount_over_the_per_sub_order_limit_is_refused_with_nothing_stored_or_sent(
    signed_contract, sandbox, change
):
    with pytest.raises(ValidationError, match="10000000"):
        deduct(signed_contract, [{**MEMBERSHIP, **change}])
    assert_nothing_stored_or_sent(sandbox)


def test_an_amount_at_the_per_sub_order_limit_is_charged(signed_contract, sandbox):
    deduction = deduct(signed_contract, [{**MEMBERSHIP, "amount": 10_000_000}])
    assert deduction.status == Deduction.Status.SUCCEEDED
    assert posts(sandbox)[0].json()["sub_orders"][0]["amount"]["total_amount"] == 10_000_000


# --- the contract -------------------------------------------------------------------------------------


def test_a_contract_past_its_expiry_is_not_charged(signed_contract, sandbox):
    Contract.objects.filter(pk=signed_contract.pk).update(contract_expired_at=timezone.now() - timedelta(seconds=1))
    signed_contract.refresh_from_db()
    with pytest.raises(ContractStateError, match="expired"):
        deduct(signed_contract, [MEMBERSHIP])
    assert_nothing_stored_or_sent(sandbox)


def test_a_contract_of_another_merchant_is_not_charged(signed_contract, sandbox):
    Contract.objects.filter(pk=signed_contract.pk).update(mchid="1900000999")
    signed_contract.refresh_from_db()
    with pytest.raises(ContractStateError, match="1900000999"):
        deduct(signed_contract, [MEMBERSHIP])
    assert_nothing_stored_or_sent(sandbox)


# --- the same number, another charge -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sub_order", "options"),
    [
        ({**FULL, "attach": "order 43"}, {}),
        ({key: value for key, value in FULL.items() if key != "attach"}, {}),
        ({**FULL, "sub_appid": "wxd678efh567hg6789"}, {}),
        ({**FULL, "profit_sharing": True}, {}),
        ({key: value for key, value in FULL.items() if key != "profit_sharing"}, {}),
        ({**FULL, "subsidy_amount": 200}, {}),
        ({key: value for key, value in FULL.items() if key != "subsidy_amount"}, {}),
        ({**FULL, "sub_risk_info": "ip:5.6.7.8;"}, {}),
        ({key: value for key, value in FULL.items() if key != "sub_risk_info"}, {}),
        (FULL, {"risk_info": "ip:5.6.7.8;"}),
        (FULL, {"risk_info": ""}),
        (FULL, {"combine_appid": "wxd678efh567hg6790"}),
    ],
    ids=[
        "another attach",
        "no attach",
        "another sub_appid",
        "profit_sharing True",
        "no profit_sharing",
        "another subsidy_amount",
        "no subsidy_amount",
        "another sub_risk_info",
        "no sub_risk_info",
        "another risk_info",
        "no risk_info",
        "another combine_appid",
    ],
)
def test_the_same_number_for_a_different_charge_is_refused_with_nothing_more_stored_or_sent(
    signed_contract, sandbox, sub_order, options
):
    first = deduct(signed_contract, [FULL], combine_out_trade_no="P1", risk_info="ip:1.2.3.4;")
    with pytest.raises(ValidationError, match="P1"):
        deduct(signed_contract, [sub_order], **{"combine_out_trade_no": "P1", "risk_info": "ip:1.2.3.4;", **options})
    assert list(Deduction.objects.values_list("pk", flat=True)) == [first.pk] and SubOrder.objects.count() == 1
    assert len(posts(sandbox)) == 1


def test_the_same_full_charge_again_returns_the_deduction_and_sends_nothing(signed_contract, sandbox):
    options = {"combine_out_trade_no": "P1", "risk_info": "ip:1.2.3.4;", "combine_appid": "wxd678efh567hg6790"}
    first = deduct(signed_contract, [FULL, {**MEMBERSHIP, "sub_mchid": "1900000202"}], **options)
    again = deduct(signed_contract, [FULL, {**MEMBERSHIP, "sub_mchid": "1900000202"}], **options)
    assert again.pk == first.pk and len(posts(sandbox)) == 1


# --- a billing run ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        lambda contract: Charge(contract, [{**MEMBERSHIP, "description": "会员\x00月费"}]),
        lambda contract: Charge(contract, [{**MEMBERSHIP, "attach": "\ud800"}]),
        lambda contract: Charge(contract, [MEMBERSHIP], risk_info="ip:\x00;"),
        lambda contract: Charge(contract, [{**MEMBERSHIP, "sub_risk_info": "ip:\x00;"}]),
        lambda contract: Charge(contract, [MEMBERSHIP], combine_out_trade_no="P\x00"),
        lambda contract: Charge(None, [MEMBERSHIP]),  # type: ignore[arg-type]
    ],
    ids=["nul description", "lone surrogate", "nul risk_info", "nul sub_risk_info", "nul number", "no contract"],
)
def test_a_billing_run_refuses_the_bad_item_and_charges_every_other(signed_contract, sandbox, bad):
    good = Charge(signed_contract, [MEMBERSHIP])
    charges = [good, bad(signed_contract), good]
    planned = deduct_many(charges)
    assert [(charge, type(error)) for charge, error in planned.refused] == [(charges[1], ValidationError)]
    statuses = list(planned.run.deductions.values_list("status", flat=True))
    assert statuses == [Deduction.Status.SUCCEEDED] * 2 and SubOrder.objects.count() == 2
    assert len(posts(sandbox)) == 2


def test_a_billing_run_sends_each_sub_risk_info_as_given(signed_contract, sandbox):
    deduct_many([Charge(signed_contract, [{**MEMBERSHIP, "sub_risk_info": "ip:1.2.3.4;"}])])
    (sent,) = posts(sandbox)
    assert sent.json()["sub_orders"][0]["sub_risk_info"] == "ip:1.2.3.4;"


def _terminated(contract):
    Contract.objects.filter(pk=contract.pk).update(status=Contract.Status.TERMINATED, terminated_at=timezone.now())


def _expired(contract):
    Contract.objects.filter(pk=contract.pk).update(contract_expired_at=timezone.now() - timedelta(seconds=1))


def _sent_here(run, deduction):
    send_run(run)  # PAPAY["TASKS"] off: sent in this process


def _sent_by_task(run, deduction):
    tasks.send_deduction.call(deduction.pk)


@pytest.mark.parametrize(("end", "reason"), [(_terminated, "terminated"), (_expired, "expired")])
@pytest.mark.parametrize("send", [_sent_here, _sent_by_task])
def test_a_created_deduction_whose_contract_ended_is_failed_not_sent(
    signed_contract, sandbox, charges, end, reason, send
):
    run = BillingRun.objects.create(label="May")
    deduction = store(signed_contract, [MEMBERSHIP], billing_run=run)
    end(signed_contract)  # after the run stored it, before it was sent
    send(run, deduction)
    deduction.refresh_from_db()
    assert deduction.status == Deduction.Status.FAILED and deduction.sent_at is None
    assert reason in deduction.last_error and signed_contract.out_contract_code in deduction.last_error
    assert charges == [("failed", deduction.pk, None)]
    assert not posts(sandbox)


@pytest.mark.parametrize(
    "item, expected",
    [
        ({"sub_mchid": "1900000201", "amount": 1500}, "Sub-order 1: description missing."),
        (
            {**MEMBERSHIP, "amout": 1},
            "Sub-order 1: amout not a sub-order field (these are: sub_mchid, description, amount, out_trade_no, "
            "attach, sub_appid, profit_sharing, subsidy_amount, sub_risk_info).",
        ),
    ],
)
def test_a_sub_order_with_missing_or_unknown_fields_names_only_what_is_wrong(signed_contract, sandbox, item, expected):
    with pytest.raises(ValidationError) as caught:
        deduct(signed_contract, [item])
    assert caught.value.messages == [expected]
    assert_nothing_stored_or_sent(sandbox)

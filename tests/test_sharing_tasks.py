"""Sharing after the charge, by task and by ``papay_share``, and the warning before WeChat Pay's 180-day limit."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_papay import tasks, wechatpay
from django_papay.models import ProfitShare, SubOrder
from django_papay.services import deduct
from django_papay.services.sharing_due import check_frozen_near_limit

from .helpers import COMMISSION, MCHID, SHARED_MEMBERSHIP, SUB_MCHID

pytestmark = pytest.mark.django_db


def platform_commission(sub_order):
    return [COMMISSION]


@pytest.fixture
def commission(papay):
    papay["COMMISSION"] = "tests.test_sharing_tasks.platform_commission"
    return papay


@pytest.fixture
def queued(settings, commission) -> list:
    commission["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    return tasks.share_sub_order.get_backend().results


def enqueued(results: list, task) -> list:
    return [result for result in results if result.task.func is task.func]


def charged(contract) -> SubOrder:
    return deduct(contract, [SHARED_MEMBERSHIP]).sub_orders.get()


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("papay_share", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the task ------------------------------------------------------------------------------------------


def test_a_charge_with_profit_sharing_is_shared_share_after_seconds_later(queued, commission, signed_contract):
    commission["SHARE_AFTER"] = 3600
    sub_order = charged(signed_contract)
    (scheduled,) = enqueued(queued, tasks.share_sub_order)
    assert scheduled.args == [sub_order.pk]
    assert scheduled.task.run_after - timezone.now() > timedelta(minutes=59)


def test_without_share_after_nothing_is_scheduled(queued, signed_contract):
    charged(signed_contract)
    assert enqueued(queued, tasks.share_sub_order) == []


def test_the_share_task_shares_then_comes_back_until_finished(queued, signed_contract, sandbox):
    sub_order = charged(signed_contract)
    assert tasks.share_sub_order.call(sub_order.pk) == ProfitShare.Status.PROCESSING
    (again,) = enqueued(queued, tasks.share_sub_order)
    assert again.kwargs == {"attempt": 1} and again.task.run_after is not None
    assert tasks.share_sub_order.call(sub_order.pk, attempt=1) == ProfitShare.Status.FINISHED
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}
    assert sandbox.balance(MCHID) == {"frozen": 0, "available": 150}
    assert tasks.share_sub_order.call(sub_order.pk).startswith("skipped")  # finished: nothing sent
    assert len([r for r in sandbox.requests if r.method == "POST" and r.path == wechatpay.SHARE_ORDERS_PATH]) == 1


@pytest.mark.parametrize("status, code", [(429, wechatpay.FREQUENCY_LIMITED), (500, wechatpay.SYSTEM_ERROR)])
def test_a_frequency_limited_or_failed_share_is_retried_with_backoff_under_its_number(
    queued, signed_contract, sandbox, status, code
):
    sub_order = charged(signed_contract)
    sandbox.answer_next(status, code)
    assert tasks.share_sub_order.call(sub_order.pk) == ProfitShare.Status.PROCESSING
    (retry,) = enqueued(queued, tasks.share_sub_order)
    assert retry.kwargs == {"attempt": 1}
    tasks.share_sub_order.call(sub_order.pk, attempt=1)
    numbers = {r.json()["out_order_no"] for r in sandbox.requests if r.path == wechatpay.SHARE_ORDERS_PATH}
    assert numbers == {ProfitShare.objects.get().out_order_no}
    assert sandbox.balance(MCHID)["available"] == 150


# --- the command ---------------------------------------------------------------------------------------


def test_papay_share_all_shares_and_finishes_every_frozen_sub_order(commission, signed_contract, sandbox):
    first, second = charged(signed_contract), charged(signed_contract)
    out, _err = run("--all")
    assert f"{first.out_trade_no}: share processing" in out and "2 sub-orders: 2 shared" in out
    run("--all")  # open shares are settled, not made anew
    assert set(ProfitShare.objects.values_list("status", flat=True)) == {ProfitShare.Status.FINISHED}
    assert ProfitShare.objects.count() == 2
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 2700}
    assert sandbox.balance(MCHID)["available"] == 300
    assert second.shares.exists()


def test_papay_share_waits_for_share_after(commission, signed_contract, sandbox):
    commission["SHARE_AFTER"] = 3600
    charged(signed_contract)
    out, _err = run()
    assert "0 sub-orders" in out and not ProfitShare.objects.exists()


def test_papay_share_without_share_after_says_so_and_shares_nothing(commission, signed_contract):
    charged(signed_contract)
    out, _err = run()
    assert "SHARE_AFTER" in out and not ProfitShare.objects.exists()


def test_papay_share_leaves_an_unknown_outcome_open_and_exits_zero(commission, signed_contract, sandbox):
    charged(signed_contract)
    sandbox.answer_next(500, wechatpay.SYSTEM_ERROR)
    out, _err = run("--all")  # unknown, not failed: it stays open, to be sent again
    assert "processing" in out and "0 failed" in out


def test_papay_share_exits_non_zero_when_wechat_pay_refuses_one(commission, signed_contract, sandbox):
    charged(signed_contract)
    sandbox.answer_next(400, "INVALID_REQUEST", "分账金额超出最大分账比例")
    err = StringIO()
    with pytest.raises(CommandError, match="1 failed"):
        call_command("papay_share", "--all", stdout=StringIO(), stderr=err)
    assert "分账金额超出最大分账比例" in err.getvalue()
    assert ProfitShare.objects.get().status == ProfitShare.Status.FAILED


# --- the 180-day limit ---------------------------------------------------------------------------------


def test_the_command_and_a_system_check_warn_of_sub_orders_near_the_180_day_limit(commission, signed_contract):
    old = charged(signed_contract)
    charged(signed_contract)  # a fresh one: no warning
    SubOrder.objects.filter(pk=old.pk).update(success_time=timezone.now() - timedelta(days=171))
    _out, err = run()
    assert err.count("WARNING") == 1 and old.out_trade_no in err and "180-day" in err
    (warning,) = check_frozen_near_limit(databases=["default"])
    assert warning.id == "django_papay.W020" and "1 sub-orders" in warning.msg
    assert check_frozen_near_limit(databases=None) == []


def test_a_finished_sub_order_is_never_warned_about(commission, signed_contract, sandbox):
    old = charged(signed_contract)
    run("--all")
    run("--all")  # the share is FINISHED on its query
    SubOrder.objects.filter(pk=old.pk).update(success_time=timezone.now() - timedelta(days=175))
    assert check_frozen_near_limit(databases=["default"]) == []


def test_papay_share_refuses_a_commission_rule_that_does_not_import(papay, signed_contract):
    papay["COMMISSION"] = "tests.test_sharing_tasks.no_such_rule"
    charged(signed_contract)
    with pytest.raises(ImproperlyConfigured, match="COMMISSION"):
        run("--all")
    assert not ProfitShare.objects.exists()


def test_the_check_is_quiet_before_the_tables_exist(db, monkeypatch):
    from django.db import OperationalError

    from django_papay.services import sharing_due

    def no_tables():
        raise OperationalError("no such table: django_papay_suborder")

    monkeypatch.setattr(sharing_due, "near_the_limit", lambda: type("Q", (), {"count": staticmethod(no_tables)})())
    assert check_frozen_near_limit(databases=["default"]) == []


def test_the_commission_is_never_taken_twice_after_a_manual_share(commission, signed_contract, sandbox):
    from django_papay.services.sharing import settle_share, share

    sub_order = charged(signed_contract)
    settle_share(share(sub_order, finish=False))  # staff shared the commission, without finishing
    run("--all")
    run("--all")
    kinds = list(ProfitShare.objects.values_list("kind", "status"))
    assert kinds == [
        (ProfitShare.Kind.SHARE, ProfitShare.Status.FINISHED),
        (ProfitShare.Kind.FINISH, ProfitShare.Status.FINISHED),
    ]
    assert sandbox.balance(MCHID)["available"] == 150
    assert sandbox.balance(SUB_MCHID) == {"frozen": 0, "available": 1350}


def test_two_racing_rule_shares_make_one_share(commission, signed_contract, sandbox):
    from django_papay.services import sharing

    sub_order = charged(signed_contract)
    first = sharing.share(sub_order)
    # The second caller got past its checks before the first stored its share: the lock finds the first's.
    cleaned = sharing.commission.clean_receivers(sub_order, platform_commission(sub_order))
    second = sharing._store(sub_order, cleaned, finish=True, from_rule=True)
    assert second.pk == first.pk and ProfitShare.objects.count() == 1


def test_past_the_180_days_a_sub_order_is_neither_warned_about_nor_shared(commission, signed_contract, sandbox):
    old = charged(signed_contract)
    SubOrder.objects.filter(pk=old.pk).update(success_time=timezone.now() - timedelta(days=181))
    out, err = run("--all")
    assert "WARNING" not in err and "0 sub-orders" in out
    assert check_frozen_near_limit(databases=["default"]) == [] and not ProfitShare.objects.exists()

"""Reconciliation's edges: papay_reconcile's output and exit codes, the daily task, the admin's list, inline,
CSV export and "reconcile again"."""

import io
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_papay import dispatch, tasks, wechatpay
from django_papay.models import Reconciliation
from django_papay.services import deduct

from .helpers import MCHID, MEMBERSHIP, run_action

pytestmark = pytest.mark.django_db


def today():
    return timezone.now().astimezone(wechatpay.BEIJING).date()


@pytest.fixture
def charged(signed_contract, sandbox, papay):
    return deduct(signed_contract, [MEMBERSHIP])


def reconcile_command(capsys, *args):
    """papay_reconcile's (exit code, stdout)."""
    try:
        call_command("papay_reconcile", *args)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        print(exc)
    return code, capsys.readouterr().out


def test_a_balanced_day_exits_0(charged, capsys):
    code, out = reconcile_command(capsys, "--date", today().isoformat())
    assert code == 0
    assert f"{today()} (all sub-merchants): balanced" in out
    assert "payments: 1 in the bill ¥15.00, 1 here ¥15.00" in out


def test_discrepancies_exit_1_each_one_printed(charged, sandbox, capsys):
    row = sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid="1900000201", amount=42)
    code, out = reconcile_command(capsys, "--date", today().isoformat())
    assert code == 1
    assert f"missing here (长款): payment {row['商户订单号']} ours ¥- -, WeChat Pay ¥0.42 SUCCESS" in out
    assert "1 discrepancies (0 fixed by a query)" in out


def test_a_bill_not_ready_exits_75(charged, sandbox, capsys):
    sandbox.bills.not_ready = wechatpay.STATEMENT_CREATING
    code, out = reconcile_command(capsys, "--date", today().isoformat())
    assert code == 75 and "not ready" in out and "STATEMENT_CREATING" in out


def test_a_refused_bill_exits_2(charged, sandbox, capsys):
    sandbox.bills.damaged_hash = True
    code, out = reconcile_command(capsys, "--date", today().isoformat(), "--sub-mchid", "1900000201")
    assert code == 2 and "SHA1" in out and "(sub-merchant 1900000201): failed" in out


def test_the_default_day_is_yesterday_in_beijing(sandbox, papay, capsys):
    code, out = reconcile_command(capsys)
    assert code == 75 and f"{today() - timedelta(days=1)} (all sub-merchants)" in out


def test_a_malformed_date_is_refused(papay, capsys):
    with pytest.raises(CommandError, match="--date must be YYYY-MM-DD"):
        call_command("papay_reconcile", "--date", "2026-13-01")


def test_the_daily_task_reconciles_the_day(charged, papay):
    papay["TASKS"] = True
    assert tasks.reconcile_day.call(today().isoformat()) == Reconciliation.Status.BALANCED


def test_the_daily_task_asks_again_in_an_hour_while_the_bill_is_not_ready(charged, papay, settings, sandbox):
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    sandbox.bills.not_ready = wechatpay.STATEMENT_CREATING
    assert tasks.reconcile_day.call(today().isoformat()) == Reconciliation.Status.NOT_READY
    (again,) = [r for r in tasks.reconcile_day.get_backend().results if r.task.func is tasks.reconcile_day.func]
    assert again.args == [today().isoformat(), ""] and again.kwargs == {"attempt": 1}
    assert again.task.run_after > timezone.now() + timedelta(minutes=59)


def test_dispatch_enqueues_the_day_with_tasks_on(papay, settings):
    papay["TASKS"] = True
    settings.TASKS = {"default": {"BACKEND": f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"}}
    assert dispatch.reconcile_day(today(), "1900000201") == dispatch.Queued(1)
    (queued,) = tasks.reconcile_day.get_backend().results
    assert queued.args == [today().isoformat(), "1900000201"]


def test_the_admin_lists_days_with_totals_and_exports_the_discrepancies(charged, sandbox, admin_client):
    sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid="1900000201", amount=42, out_trade_no="FOREIGN1")
    call_command_quietly()
    report = Reconciliation.objects.get()
    listing = admin_client.get("/admin/django_papay/reconciliation/").content.decode()
    assert "¥15.42" in listing and "discrepancies" in listing
    page = admin_client.get(f"/admin/django_papay/reconciliation/{report.pk}/change/").content.decode()
    assert "FOREIGN1" in page and "¥0.42" in page
    response = run_action(admin_client, Reconciliation, "export_discrepancies", [report])
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("bill_date,sub_mchid,kind,row,out_trade_no")
    assert lines[1].startswith(f"{today()},,missing_here,payment,FOREIGN1,") and ",,42,," in lines[1]


def test_reconcile_again_from_the_admin(charged, admin_client):
    call_command_quietly()
    response = run_action(admin_client, Reconciliation, "reconcile_again", list(Reconciliation.objects.all()))
    assert f"{today()}: balanced." in response.content.decode()


def test_reconcile_again_is_offered_and_postable_only_with_its_permission(charged, sandbox, staff_client):
    call_command_quietly()
    report = Reconciliation.objects.get()
    asked = len(sandbox.requests)
    without = staff_client("view_reconciliation")
    assert 'value="reconcile_again"' not in without.get("/admin/django_papay/reconciliation/").content.decode()
    run_action(without, Reconciliation, "reconcile_again", [report])
    assert len(sandbox.requests) == asked  # nothing asked of WeChat Pay
    allowed = staff_client("view_reconciliation", "reconcile")
    assert 'value="reconcile_again"' in allowed.get("/admin/django_papay/reconciliation/").content.decode()
    assert f"{today()}: balanced." in run_action(allowed, Reconciliation, "reconcile_again", [report]).content.decode()
    assert len(sandbox.requests) > asked


def call_command_quietly():
    try:
        call_command("papay_reconcile", "--date", today().isoformat(), stdout=io.StringIO())
    except CommandError:
        pass


def test_the_reconciliations_read_in_chinese(charged, sandbox, admin_client, settings):
    sandbox.bills.add_foreign_charge(mchid=MCHID, sub_mchid="1900000201", amount=42)
    call_command_quietly()
    settings.LANGUAGE_CODE = "zh-hans"
    listing = admin_client.get("/admin/django_papay/reconciliation/").content.decode()
    for label in ("对账", "账单日期", "差异", "导出差异（CSV）", "支付金额（微信支付）"):
        assert label in listing, label
    page = admin_client.get(f"/admin/django_papay/reconciliation/{Reconciliation.objects.get().pk}/change/")
    assert "长款（账单有，本地无）" in page.content.decode()

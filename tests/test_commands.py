"""papay_sync and papay_presign, as cron and scripts run them."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_papay.models import Contract
from django_papay.services import presign

pytestmark = pytest.mark.django_db


def _run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _presigned(minutes_ago: int, **fields) -> Contract:
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a", **fields))
    Contract.objects.filter(pk=contract.pk).update(presigned_at=timezone.now() - timedelta(minutes=minutes_ago))
    contract.refresh_from_db()
    return contract


def test_sync_signs_a_contract_whose_notification_was_dropped(papay, sandbox):
    contract = _presigned(30)
    sandbox.sign_contract(contract.out_contract_code, drop=True)
    out, _ = _run("papay_sync")
    contract.refresh_from_db()
    assert contract.status == Contract.Status.SIGNED
    assert f"{contract.out_contract_code}: pre-signed → signed" in out
    assert "1 queried: 1 ok, 0 skipped, 0 failed" in out


def test_sync_leaves_recent_presigns_alone_and_expires_old_ones(papay, sandbox):
    recent, stale = _presigned(1), _presigned(121)
    out, _ = _run("papay_sync", "--older-than", "10")
    assert recent.out_contract_code not in out
    assert f"{stale.out_contract_code}: pre-signed → pre-sign expired" in out
    assert Contract.objects.get(pk=recent.pk).status == Contract.Status.PRESIGNED
    assert Contract.objects.get(pk=stale.pk).status == Contract.Status.EXPIRED
    out, _ = _run("papay_sync")  # an expired contract is queried once after expiring, then left alone
    assert "0 queried" in out


def test_sync_exits_non_zero_when_a_query_fails(papay, sandbox):
    ok, failing = _presigned(30), _presigned(40)
    sandbox.fail_next("system_error")
    with pytest.raises(CommandError, match="2 queried: 1 ok, 0 skipped, 1 failed"):
        _run("papay_sync")
    assert "SYSTEM_ERROR" in Contract.objects.get(pk=failing.pk).last_error + Contract.objects.get(pk=ok.pk).last_error


def test_sync_given_codes_queries_exactly_those(papay, sandbox):
    first, _second = _presigned(0), _presigned(0)
    out, _ = _run("papay_sync", first.out_contract_code)
    assert "1 queried" in out and len(sandbox.requests) == 3  # two pre-signs, one query


def test_sync_refuses_unknown_codes(papay, sandbox):
    with pytest.raises(CommandError, match="NOPE"):
        _run("papay_sync", "NOPE")


def test_presign_command_prints_each_pre_entrustweb_id(papay, sandbox):
    contracts = [Contract.objects.create(plan_id=12535, contract_display_account=str(i)) for i in range(3)]
    out, _ = _run("papay_presign", *[c.out_contract_code for c in contracts])
    for contract in contracts:
        contract.refresh_from_db()
        assert f"{contract.out_contract_code}: pre_entrustweb_id {contract.pre_entrustweb_id}" in out
    assert "3 pre-signed: 3 ok" in out


def test_presign_command_rerun_skips_live_sessions_and_succeeds(papay, sandbox, contract):
    _run("papay_presign", contract.out_contract_code)
    out, _ = _run("papay_presign", contract.out_contract_code)
    assert "skipped" in out and "1 pre-signed: 0 ok, 1 skipped, 0 failed" in out
    assert len(sandbox.requests) == 1


def test_presign_command_mini_program(papay, sandbox, contract):
    _run("papay_presign", "--mini-program", contract.out_contract_code)
    assert sandbox.requests[0].path.endswith("/pre-entrust-sign/mini-program")


def test_presign_command_exits_non_zero_on_wechatpay_error(papay, sandbox, contract):
    sandbox.answer_next(400, "PARAM_ERROR", "bad")
    with pytest.raises(CommandError, match="1 failed"):
        _run("papay_presign", contract.out_contract_code)


def test_the_index_papay_sync_reads_holds_exactly_the_statuses_it_selects():
    """The partial index is written with the statuses' values (Meta cannot name Contract.Status): a renamed
    status would silently leave papay_sync scanning every contract again."""
    (index,) = [index for index in Contract._meta.indexes if index.name == "papay_contract_due_sync"]
    selected = set(dict(index.condition.children)["status__in"])
    assert selected == {Contract.Status.PRESIGNED, Contract.Status.EXPIRED}

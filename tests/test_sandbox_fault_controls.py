"""The sandbox's loopback fault controls: ``POST /sandbox/faults`` queues what a test's ``fail_next`` or
``answer_next`` would, so a running demo can show staff what a WeChat Pay error looks like."""

from __future__ import annotations

import pytest
import requests

from django_papay.exceptions import WeChatPayError
from django_papay.models import Contract
from django_papay.services import presign

from .helpers import PLAN_ID

FAULTS = "/sandbox/faults"


def test_a_named_fault_posted_to_the_control_is_taken_by_the_next_call(db, papay, sandbox):
    answer = requests.post(sandbox.url + FAULTS, json={"fault": "system_error"}, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"pending": ["system_error"]}
    with pytest.raises(WeChatPayError) as refused:
        presign(Contract.objects.create(plan_id=PLAN_ID, contract_display_account="a"))
    assert (refused.value.status, refused.value.code) == (500, "SYSTEM_ERROR")
    assert requests.get(sandbox.url + FAULTS, timeout=5).json() == {"pending": []}


def test_an_error_answer_posted_to_the_control_reaches_the_client_with_its_field(db, papay, sandbox):
    wanted = {"status": 400, "code": "PARAM_ERROR", "message": "模板不存在", "detail": {"field": "plan_id"}}
    requests.post(sandbox.url + FAULTS, json=wanted, timeout=5).raise_for_status()
    contract = Contract.objects.create(plan_id=PLAN_ID, contract_display_account="a")
    with pytest.raises(WeChatPayError):
        presign(contract)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.FAILED and "PARAM_ERROR: 模板不存在" in contract.last_error


def test_an_unknown_fault_is_refused_naming_the_choices(sandbox):
    answer = requests.post(sandbox.url + FAULTS, json={"fault": "gremlins"}, timeout=5)
    assert answer.status_code == 400 and "ratelimit" in answer.json()["message"]


def test_queued_faults_can_be_dropped(sandbox):
    requests.post(sandbox.url + FAULTS, json={"fault": "ratelimit", "times": 3}, timeout=5)
    assert requests.delete(sandbox.url + FAULTS, timeout=5).json() == {"pending": []}
    assert sandbox.faults.pop() is None

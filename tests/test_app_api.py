"""The App's signing flow through its JSON endpoints, against the sandbox: pre-sign, the live session reused,
the signed state, and "am I signed?" answered truly before the notification arrives."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User

from django_papay.models import AppSigning, Contract, PresignAttempt
from django_papay.wechatpay import APP_PRESIGN_PATH, MINI_PROGRAM_PRESIGN_PATH, SIGNING_MINI_PROGRAM

from .helpers import OTHER_PLAN_ID, PLAN_ID, app_contract, app_presign, deliver


def _presigns(sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.path in (APP_PRESIGN_PATH, MINI_PROGRAM_PRESIGN_PATH))


def _queries(sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "GET" and "/out-contract-code/" in r.path)


def test_presign_answers_a_session_with_the_opensdk_launch_parameters(app_papay, sandbox, app_user):
    answer = app_presign(app_user())
    assert answer.status_code == 200, answer.content
    data = answer.json()
    contract = Contract.objects.get(out_contract_code=data["out_contract_code"])
    assert data["status"] == "presigned" and data["channel"] == "app" and data["plan_id"] == PLAN_ID
    assert data["pre_entrustweb_id"] == contract.pre_entrustweb_id
    assert data["pre_entrustweb_id"] in sandbox.presigns
    assert data["expires_at"].endswith("+08:00")
    assert data["launch"] == {"businessType": 12, "queryInfo": {"pre_entrustweb_id": contract.pre_entrustweb_id}}
    assert contract.user == User.objects.get(username="13812348888")


def test_mini_program_channel_answers_the_navigation_to_wechatpays_signing_mini_program(app_papay, sandbox, app_user):
    data = app_presign(app_user(), channel="mini_program").json()
    assert data["channel"] == "mini_program"
    assert data["launch"] == {**SIGNING_MINI_PROGRAM, "extraData": {"pre_entrustweb_id": data["pre_entrustweb_id"]}}
    assert [r.path for r in sandbox.requests] == [MINI_PROGRAM_PRESIGN_PATH]


def test_another_tap_answers_the_live_session_without_a_new_presign(app_papay, sandbox, app_user):
    client = app_user()
    first = app_presign(client).json()
    again = app_presign(client).json()
    assert again == first
    assert _presigns(sandbox) == 1
    assert Contract.objects.count() == 1 and AppSigning.objects.count() == 1
    assert PresignAttempt.objects.count() == 1  # only the pre-sign sent spent budget


def test_each_plan_gets_its_own_contract(app_papay, sandbox, app_user):
    client = app_user()
    one, other = app_presign(client).json(), app_presign(client, plan_id=OTHER_PLAN_ID).json()
    assert one["out_contract_code"] != other["out_contract_code"]
    assert sorted(Contract.objects.values_list("plan_id", flat=True)) == [PLAN_ID, OTHER_PLAN_ID]


def test_signed_contract_answers_its_signed_state_not_a_new_session(app_papay, sandbox, app_user):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    sandbox.sign_contract(code, drop=True)
    app_contract(client, code, refresh=True)
    sandbox.reset()
    data = app_presign(client).json()
    assert data["status"] == "signed" and data["out_contract_code"] == code
    assert data["pre_entrustweb_id"] is None and data["launch"] is None and data["signed_at"]
    assert sandbox.requests == []


def test_status_without_refresh_answers_what_is_stored_and_asks_nobody(app_papay, sandbox, app_user):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    sandbox.sign_contract(code, drop=True)  # signed at WeChat Pay; the notification is still on its way
    sandbox.requests.clear()
    assert app_contract(client, code).json()["status"] == "presigned"
    assert sandbox.requests == []


def test_refresh_turns_signed_before_any_notification(app_papay, sandbox, app_user, signals):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    sandbox.sign_contract(code, drop=True)
    data = app_contract(client, code, refresh=True).json()
    assert data["status"] == "signed" and data["signed_at"] and data["contract_expired_at"]
    contract = Contract.objects.get(out_contract_code=code)
    assert contract.openid and contract.contract_id
    assert [(kind, pk, n) for kind, pk, n in signals] == [("signed", contract.pk, None)]


def test_refresh_asks_wechatpay_at_most_once_per_interval_per_contract(app_papay, sandbox, app_user):
    app_papay["APP_REFRESH_INTERVAL"] = 60
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    for _ in range(3):
        assert app_contract(client, code, refresh=True).json()["status"] == "presigned"
    assert _queries(sandbox) == 1
    assert sandbox.requests[-1].path.endswith(f"/out-contract-code/{code}")


def test_refresh_of_a_signed_contract_asks_nobody(app_papay, sandbox, app_user):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    sandbox.sign_contract(code, drop=True)
    app_contract(client, code, refresh=True)
    app_papay["APP_REFRESH_INTERVAL"] = 0
    assert app_contract(client, code, refresh=True).json()["status"] == "signed"
    assert _queries(sandbox) == 1


def test_notification_signs_an_app_contract_and_signals_once(app_papay, sandbox, app_user, signals):
    client = app_user()
    code = app_presign(client).json()["out_contract_code"]
    notification = sandbox.sign_notification(code)
    assert deliver(notification).status_code == 204
    app_papay["APP_REFRESH_INTERVAL"] = 0
    assert app_contract(client, code, refresh=True).json()["status"] == "signed"
    contract = Contract.objects.get(out_contract_code=code)
    assert [(kind, pk) for kind, pk, _ in signals] == [("signed", contract.pk)]
    assert signals[0].notification is not None
    assert _queries(sandbox) == 0


def test_expired_session_reads_expired_and_the_next_tap_presigns_again(app_papay, sandbox, app_user):
    client = app_user()
    first = app_presign(client).json()
    Contract.objects.update(presigned_at=Contract.objects.get().presigned_at - timedelta(hours=2, seconds=1))
    assert app_contract(client, first["out_contract_code"]).json()["status"] == "expired"
    again = app_presign(client).json()
    assert again["out_contract_code"] == first["out_contract_code"]
    assert again["status"] == "presigned" and again["pre_entrustweb_id"] != first["pre_entrustweb_id"]
    assert _presigns(sandbox) == 2


def test_terminated_contract_is_followed_by_a_new_contract_on_the_next_tap(app_papay, sandbox, app_user):
    client = app_user()
    old = app_presign(client).json()["out_contract_code"]
    Contract.objects.filter(out_contract_code=old).update(status=Contract.Status.TERMINATED)
    new = app_presign(client).json()
    assert new["out_contract_code"] != old and new["status"] == "presigned"
    assert AppSigning.objects.get().contract.out_contract_code == new["out_contract_code"]
    assert app_contract(client, old).json()["status"] == "terminated"  # still the user's, as it was


def test_a_contract_staff_made_for_the_user_is_adopted_not_doubled(app_papay, sandbox, app_user):
    client = app_user()
    staff_made = Contract.objects.create(
        plan_id=PLAN_ID, contract_display_account="138****8888", user=User.objects.get()
    )
    assert app_presign(client).json()["out_contract_code"] == staff_made.out_contract_code
    assert Contract.objects.count() == 1

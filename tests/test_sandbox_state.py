"""What the sandbox's WeChat Pay remembers, and how every answer is signed, over real HTTP.

The mini-program pre-sign is idempotent; every answer carries the full signed header set; a state file
keeps pre-signs and contracts across a restart. Plain pytest, no Django.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from django_papay import wechatpay
from django_papay.sandbox import ensure_demo_keys
from django_papay.sandbox.__main__ import parser as sandbox_cli_parser

from .helpers import WECHATPAY_PUBLIC_KEY_ID, Keys, make_sandbox
from .sandbox_merchant import Merchant, presign_body

MINI_PROGRAM_PATH = wechatpay.MINI_PROGRAM_PRESIGN_PATH
CODE = "Contract20250101A1"
SIGNED_ANSWER_HEADERS = (*wechatpay.SIGNED_HEADERS, wechatpay.REQUEST_ID_HEADER)


def mini_program_body(**changes: Any) -> dict[str, Any]:
    return {name: value for name, value in presign_body(**changes).items() if name != "return_app"}


def query_path(plan_id: int = 12535, code: str = CODE) -> str:
    return wechatpay.path(wechatpay.CONTRACT_PATH, plan_id=plan_id, out_contract_code=code)


# --- the mini-program pre-sign is idempotent ----------------------------------------------------


def test_mini_program_presign_of_the_same_body_answers_the_same_id(merchant: Merchant) -> None:
    first = merchant.post(mini_program_body(), path=MINI_PROGRAM_PATH)
    again = merchant.post(mini_program_body(), path=MINI_PROGRAM_PATH)

    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["pre_entrustweb_id"] == first.json()["pre_entrustweb_id"]
    assert len(merchant.sandbox.presigns) == 1


def test_mini_program_presign_of_another_body_opens_a_new_session(merchant: Merchant) -> None:
    first = merchant.post(mini_program_body(), path=MINI_PROGRAM_PATH).json()["pre_entrustweb_id"]
    other = merchant.post(mini_program_body(contract_display_account="Another user"), path=MINI_PROGRAM_PATH)

    assert other.status_code == 200 and other.json()["pre_entrustweb_id"] != first
    assert merchant.sandbox.presign_for(CODE)["contract_display_account"] == "Another user"


def test_app_presign_of_the_same_body_opens_a_new_session_each_time(merchant: Merchant) -> None:
    ids = {merchant.post().json()["pre_entrustweb_id"] for _ in range(2)}
    assert len(ids) == 2


# --- every answer is signed with its signature type -----------------------------------------


def assert_signed_answer(merchant: Merchant, response: requests.Response) -> None:
    missing = [name for name in SIGNED_ANSWER_HEADERS if not response.headers.get(name)]
    assert missing == []
    assert response.headers[wechatpay.SIGNATURE_TYPE_HEADER] == wechatpay.SIGNATURE_TYPE
    assert response.headers[wechatpay.SERIAL_HEADER] == WECHATPAY_PUBLIC_KEY_ID
    assert merchant.verifies(response)


def test_a_success_answer_carries_the_signature_type(merchant: Merchant) -> None:
    response = merchant.post()
    assert response.status_code == 200
    assert_signed_answer(merchant, response)


def test_an_error_answer_carries_the_signature_type(merchant: Merchant) -> None:
    response = merchant.post(key=merchant.keys.wechatpay)  # signed with the wrong key: 401
    assert response.status_code == 401
    assert_signed_answer(merchant, response)


def test_an_injected_error_answer_carries_the_signature_type(merchant: Merchant) -> None:
    merchant.sandbox.fail_next("ratelimit")
    response = merchant.post()
    assert response.status_code == 429
    assert_signed_answer(merchant, response)


def test_a_control_answer_carries_the_signature_type(merchant: Merchant) -> None:
    response = requests.get(merchant.sandbox.url + "/sandbox/contracts", timeout=5)
    assert response.status_code == 200
    assert_signed_answer(merchant, response)


# --- a state file keeps contracts across restarts -------------------------------------------


def test_a_restarted_sandbox_on_the_same_state_file_still_knows_the_contract(keys: Keys, tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    with make_sandbox(keys, state_file=state_file) as sandbox:
        pre_entrustweb_id = Merchant(sandbox, keys).post().json()["pre_entrustweb_id"]

    with make_sandbox(keys, state_file=state_file) as restarted:
        merchant = Merchant(restarted, keys)
        answer = merchant.post(path=query_path(), method="GET")
        assert answer.status_code == 200, answer.text
        assert answer.json()["contract_state"] == wechatpay.NOT_SIGNED
        assert pre_entrustweb_id in restarted.presigns

        restarted.sign_contract(CODE, drop=True)  # the user signs; the notification is lost
        assert merchant.post(path=query_path(), method="GET").json()["contract_state"] == wechatpay.SIGNED


def test_the_state_file_is_json_rewritten_whole_after_each_change(keys: Keys, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with make_sandbox(keys, state_file=state_file) as sandbox:
        Merchant(sandbox, keys).post()
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        assert saved["contracts"][CODE]["contract_state"] == wechatpay.NOT_SIGNED

        sandbox.sign_contract(CODE, drop=True)
        assert json.loads(state_file.read_text(encoding="utf-8"))["contracts"][CODE]["contract_state"] == "SIGNED"
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


def test_a_state_file_that_is_not_one_names_itself(keys: Keys, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"state\.json is not a sandbox state file"):
        make_sandbox(keys, state_file=state_file)


def test_demo_keys_offer_a_state_file_next_to_them(tmp_path: Path) -> None:
    keys = ensure_demo_keys(tmp_path / "keys")
    assert Path(keys.state_file) == (tmp_path / "keys" / "sandbox-state.json").resolve()
    assert keys.sandbox(state_file=keys.state_file).state.state_file == Path(keys.state_file)


def test_cli_takes_a_state_file(tmp_path: Path) -> None:
    options = sandbox_cli_parser().parse_args(["--keys-dir", str(tmp_path), "--state", str(tmp_path / "s.json")])
    assert options.state == str(tmp_path / "s.json")
    assert sandbox_cli_parser().parse_args(["--keys-dir", str(tmp_path)]).state is None


def test_cli_puts_contract_id_into_notifications_only_when_asked(tmp_path: Path) -> None:
    assert sandbox_cli_parser().parse_args(["--keys-dir", str(tmp_path)]).notify_contract_id is False
    assert sandbox_cli_parser().parse_args(["--keys-dir", str(tmp_path), "--notify-contract-id"]).notify_contract_id

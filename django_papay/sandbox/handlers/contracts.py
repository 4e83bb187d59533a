"""The contract endpoints: pre-sign (APP and mini-program), query and terminate by ``out_contract_code``.

All of them read and change ``state.contracts``, the one store of pre-signs and contracts.
"""

from __future__ import annotations

import re
from typing import Any

from django_papay import wechatpay

from .. import validation
from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState
from ..validation import FieldRule

PRESIGN_FIELDS = (
    FieldRule("appid", validation.string(1, 32)),
    FieldRule("plan_id", validation.positive_integer),
    FieldRule("out_contract_code", validation.contract_code),
    FieldRule("contract_display_account", validation.string(1, 32)),
    FieldRule("notify_url", validation.notify_url),
    FieldRule("return_app", validation.boolean, required=False),
    FieldRule("attach", validation.string(0, 255), required=False),
)
MINI_PROGRAM_PRESIGN_FIELDS = tuple(rule for rule in PRESIGN_FIELDS if rule.name not in ("return_app", "attach"))
TERMINATE_FIELDS = (FieldRule("contract_termination_remark", validation.string(1, 256)),)


def presign_app(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/contracts/pre-entrust-sign: open a signing session and answer its ``pre_entrustweb_id``."""
    data = validation.check_body(request.body, PRESIGN_FIELDS)
    return _presigned(state, data, state.contracts.presign(data, channel="app"))


def presign_mini_program(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/pre-entrust-sign/mini-program: the same for a mini-program (no return_app, no attach).

    Documented as idempotent: the same request again, while its session is open, answers the same id.
    """
    data = validation.check_body(request.body, MINI_PROGRAM_PRESIGN_FIELDS)
    return _presigned(state, data, state.contracts.presign(data, channel="mini_program", idempotent=True))


def query(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """GET …/contracts/plan-id/{plan_id}/out-contract-code/{out_contract_code}"""
    code, contract = _known(state, match)
    answer = {
        "mchid": state.mchid,
        "plan_id": contract["plan_id"],
        "out_contract_code": code,
        **{name: contract[name] for name in ("appid", "contract_display_account") if contract.get(name)},
        "contract_state": contract["contract_state"],
    }
    if contract["contract_state"] != wechatpay.NOT_SIGNED:
        for name in ("contract_id", "openid", "contract_signed_time", "contract_expired_time"):
            if contract.get(name):
                answer[name] = contract[name]
    if contract["contract_state"] == wechatpay.TERMINATED:
        answer["contract_terminate_info"] = contract["contract_terminate_info"]
    return Reply.json(200, answer)


def terminate(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """POST …/out-contract-code/{out_contract_code}/terminate: the merchant ends a signed contract."""
    code, contract = _known(state, match)
    remark = validation.check_body(request.body, TERMINATE_FIELDS)["contract_termination_remark"]
    if contract["contract_state"] != wechatpay.SIGNED:
        now = "已解约" if contract["contract_state"] == wechatpay.TERMINATED else "未签约"
        raise ApiError(400, wechatpay.INVALID_REQUEST, f"协议状态不允许解约：{now}")
    state.contracts.terminated(code, mode=wechatpay.MCH_API_TERMINATE, at=wechatpay.format_rfc3339(), remark=remark)
    return Reply.json(200, {"mchid": state.mchid, "plan_id": contract["plan_id"], "out_contract_code": code})


def _presigned(state: SandboxState, data: dict[str, Any], pre_entrustweb_id: str) -> Reply:
    return Reply.json(
        200,
        {
            "pre_entrustweb_id": pre_entrustweb_id,
            "mchid": state.mchid,
            "plan_id": data["plan_id"],
            "out_contract_code": data["out_contract_code"],
        },
    )


def _known(state: SandboxState, match: re.Match[str]) -> tuple[str, dict[str, Any]]:
    code, plan_id = match["out_contract_code"], int(match["plan_id"])
    contract = state.contracts.get(code)
    if contract is None or contract.get("plan_id") != plan_id:
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, "签约协议不存在")
    return code, contract

"""What the sandbox's WeChat Pay knows about each contract, and the endpoints that read or end it.

A pre-sign opens a contract (``NOT_SIGNED``), the user signing (``Sandbox.sign_contract``) makes it
``SIGNED``, and the user or the merchant's terminate call makes it ``TERMINATED``. The query answers
from this book, so a test can drop a notification and still find the truth by querying.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from . import validation
from .answers import Answer, ApiError
from .notifications import rfc3339

if TYPE_CHECKING:
    from .server import RecordedRequest, Sandbox

NOT_SIGNED, SIGNED, TERMINATED = "NOT_SIGNED", "SIGNED", "TERMINATED"
MCH_API_TERMINATE = "MCH_API_TERMINATE"

MINI_PROGRAM_PRESIGN_FIELDS = tuple(
    rule for rule in validation.PRESIGN_FIELDS if rule.name not in ("return_app", "attach")
)
TERMINATE_FIELDS = (validation.FieldRule("contract_termination_remark", validation.string(1, 256)),)


class ContractBook:
    """Contracts by ``out_contract_code``, as WeChat Pay's query endpoint reports them; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contracts: dict[str, dict[str, Any]] = {}

    def get(self, out_contract_code: str) -> dict[str, Any] | None:
        with self._lock:
            contract = self._contracts.get(out_contract_code)
            return None if contract is None else dict(contract)

    def by_contract_id(self, contract_id: str) -> dict[str, Any] | None:
        """The contract WeChat Pay knows under ``contract_id`` (given when the user signed)."""
        with self._lock:
            for contract in self._contracts.values():
                if contract_id and contract.get("contract_id") == contract_id:
                    return dict(contract)
        return None

    def opened(self, presign: dict[str, Any]) -> None:
        """A pre-sign was accepted: the contract exists, not signed (a later pre-sign keeps any state)."""
        with self._lock:
            self._contracts.setdefault(presign["out_contract_code"], {"contract_state": NOT_SIGNED})
            self._contracts[presign["out_contract_code"]].update(
                {name: presign[name] for name in ("appid", "plan_id", "contract_display_account")}
            )

    def signed(self, resource: dict[str, Any]) -> None:
        """The user signed; ``resource`` is the SIGN notification's plaintext."""
        with self._lock:
            contract = self._contracts.setdefault(resource["out_contract_code"], {})
            contract.update(
                contract_state=SIGNED,
                appid=resource.get("appid"),
                plan_id=resource.get("plan_id"),
                openid=resource.get("openid"),
                contract_id=resource.get("contract_id", ""),
                contract_signed_time=resource.get("operate_time"),
                contract_expired_time=resource.get("contract_expired_time"),
            )

    def terminated(self, out_contract_code: str, *, mode: str, at: str, remark: str = "", **fields: Any) -> None:
        with self._lock:
            contract = self._contracts.setdefault(out_contract_code, {})
            contract.update({name: value for name, value in fields.items() if value is not None})
            contract["contract_state"] = TERMINATED
            contract["contract_terminate_info"] = {
                "contract_termination_mode": mode,
                "contract_terminated_time": at,
                "contract_termination_remark": remark,
            }

    def clear(self) -> None:
        with self._lock:
            self._contracts.clear()


def query(sandbox: Sandbox, request: RecordedRequest, match: re.Match[str]) -> Answer:
    """GET …/contracts/plan-id/{plan_id}/out-contract-code/{out_contract_code}"""
    code, contract = _known(sandbox, match)
    answer = {
        "mchid": sandbox.mchid,
        "plan_id": contract["plan_id"],
        "out_contract_code": code,
        **{name: contract[name] for name in ("appid", "contract_display_account") if contract.get(name)},
        "contract_state": contract["contract_state"],
    }
    if contract["contract_state"] != NOT_SIGNED:
        for name in ("contract_id", "openid", "contract_signed_time", "contract_expired_time"):
            if contract.get(name):
                answer[name] = contract[name]
    if contract["contract_state"] == TERMINATED:
        answer["contract_terminate_info"] = contract["contract_terminate_info"]
    return Answer.json(200, answer)


def terminate(sandbox: Sandbox, request: RecordedRequest, match: re.Match[str]) -> Answer:
    """POST …/out-contract-code/{out_contract_code}/terminate: the merchant ends a signed contract."""
    code, contract = _known(sandbox, match)
    remark = validation.check_body(request.body, TERMINATE_FIELDS)["contract_termination_remark"]
    if contract["contract_state"] != SIGNED:
        state = "已解约" if contract["contract_state"] == TERMINATED else "未签约"
        raise ApiError(400, "INVALID_REQUEST", f"协议状态不允许解约：{state}")
    sandbox.contracts.terminated(code, mode=MCH_API_TERMINATE, at=rfc3339(None), remark=remark)
    return Answer.json(200, {"mchid": sandbox.mchid, "plan_id": contract["plan_id"], "out_contract_code": code})


def _known(sandbox: Sandbox, match: re.Match[str]) -> tuple[str, dict[str, Any]]:
    code, plan_id = match["out_contract_code"], int(match["plan_id"])
    contract = sandbox.contracts.get(code)
    if contract is None or contract.get("plan_id") != plan_id:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "签约协议不存在")
    return code, contract

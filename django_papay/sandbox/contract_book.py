"""The one store of what the sandbox's WeChat Pay knows about contracts: each one's pre-signs and its state.

A pre-sign opens a contract (``NOT_SIGNED``) and a signing session (``pre_entrustweb_id``); the user
signing makes it ``SIGNED``; the user or the merchant's terminate call makes it ``TERMINATED``. The
query endpoint answers from here, so a test can drop a notification and still find the truth.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from django_papay import wechatpay

PRESIGN_ID_LENGTH = 48
# The fields of a pre-sign body that make two mini-program pre-signs "the same request".
PRESIGN_REQUEST_FIELDS = ("appid", "plan_id", "out_contract_code", "contract_display_account", "notify_url")


class ContractBook:
    """Contracts by ``out_contract_code``, each with its pre-signs, oldest first. Thread-safe.

    ``on_change`` (set by the state) is called after every change, outside the lock, to persist it.
    """

    def __init__(self) -> None:
        self.on_change: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._contracts: dict[str, dict[str, Any]] = {}

    # --- reading --------------------------------------------------------------------------------

    def get(self, out_contract_code: str) -> dict[str, Any] | None:
        """The contract as the query endpoint reports it (a copy, without its pre-signs), or None."""
        with self._lock:
            contract = self._contracts.get(out_contract_code)
            if contract is None:
                return None
            return {name: copy.deepcopy(value) for name, value in contract.items() if name != "presigns"}

    def presigns(self) -> dict[str, dict[str, Any]]:
        """Every accepted pre-sign by ``pre_entrustweb_id``, in the order they were made (copies)."""
        with self._lock:
            sessions = [session for contract in self._contracts.values() for session in contract["presigns"]]
        sessions.sort(key=lambda session: session["created_at"])
        return {session["pre_entrustweb_id"]: _presign_view(session) for session in sessions}

    def by_contract_id(self, contract_id: str) -> dict[str, Any] | None:
        """The contract WeChat Pay gave ``contract_id`` when the user signed (a copy), or None."""
        with self._lock:
            code = next(
                (
                    code
                    for code, contract in self._contracts.items()
                    if contract_id and contract.get("contract_id") == contract_id
                ),
                None,
            )
        return None if code is None else self.get(code)

    def latest_presign(self, out_contract_code: str) -> dict[str, Any] | None:
        """The latest accepted pre-sign of ``out_contract_code``, or None if there never was one."""
        with self._lock:
            contract = self._contracts.get(out_contract_code)
            session = contract["presigns"][-1] if contract and contract["presigns"] else None
            return None if session is None else _presign_view(session)

    # --- changes --------------------------------------------------------------------------------

    def presign(self, request: dict[str, Any], *, channel: str, idempotent: bool = False) -> str:
        """Accept a pre-sign ``request`` (its checked body) and answer its ``pre_entrustweb_id``.

        ``idempotent``: the same request again while its session is open answers the same id, as the
        mini-program pre-sign is documented to. A later pre-sign keeps the contract's state.
        """
        code = request["out_contract_code"]
        with self._lock:
            contract = self._contracts.setdefault(
                code, {"out_contract_code": code, "contract_state": wechatpay.NOT_SIGNED, "presigns": []}
            )
            if idempotent:
                same = _open_session(contract["presigns"], request, channel)
                if same is not None:
                    return same
            pre_entrustweb_id = wechatpay.nonce(PRESIGN_ID_LENGTH)
            contract["presigns"].append(
                {**request, "channel": channel, "created_at": time.time(), "pre_entrustweb_id": pre_entrustweb_id}
            )
            contract.update({name: request[name] for name in ("appid", "plan_id", "contract_display_account")})
        self.on_change()
        return pre_entrustweb_id

    def signed(self, resource: dict[str, Any]) -> None:
        """The user signed; ``resource`` is the SIGN notification's plaintext."""
        with self._lock:
            contract = self._entry(resource["out_contract_code"])
            contract.update(
                contract_state=wechatpay.SIGNED,
                appid=resource.get("appid"),
                plan_id=resource.get("plan_id"),
                openid=resource.get("openid"),
                contract_id=resource.get("contract_id", ""),
                contract_signed_time=resource.get("operate_time"),
                contract_expired_time=resource.get("contract_expired_time"),
            )
        self.on_change()

    def terminated(self, out_contract_code: str, *, mode: str, at: str, remark: str = "", **fields: Any) -> None:
        """The contract ended in ``mode`` at ``at``; ``fields`` (None ones skipped) update what is known."""
        with self._lock:
            contract = self._entry(out_contract_code)
            contract.update({name: value for name, value in fields.items() if value is not None})
            contract["contract_state"] = wechatpay.TERMINATED
            contract["contract_terminate_info"] = {
                "contract_termination_mode": mode,
                "contract_terminated_time": at,
                "contract_termination_remark": remark,
            }
        self.on_change()

    def clear(self) -> None:
        with self._lock:
            self._contracts.clear()
        self.on_change()

    # --- persistence ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (see ``load``)."""
        with self._lock:
            return copy.deepcopy(self._contracts)

    def load(self, data: dict[str, Any]) -> None:
        """Replace everything with what ``dump`` gave (no ``on_change``: it is what was saved)."""
        with self._lock:
            self._contracts = copy.deepcopy(data)

    def _entry(self, out_contract_code: str) -> dict[str, Any]:
        # A contract signed through another channel has no pre-sign here; it is known from now on.
        return self._contracts.setdefault(out_contract_code, {"out_contract_code": out_contract_code, "presigns": []})


def _presign_view(session: dict[str, Any]) -> dict[str, Any]:
    """A pre-sign as ``Sandbox.presigns`` shows it: the body, ``channel`` and ``created_at``."""
    return {name: copy.deepcopy(value) for name, value in session.items() if name != "pre_entrustweb_id"}


def _open_session(sessions: list[dict[str, Any]], request: dict[str, Any], channel: str) -> str | None:
    """The id of a still-open session opened by the same request on ``channel``, if any."""
    open_since = time.time() - wechatpay.PRESIGN_SESSION.total_seconds()
    for session in reversed(sessions):
        same = all(session.get(name) == request.get(name) for name in PRESIGN_REQUEST_FIELDS)
        if same and session["channel"] == channel and session["created_at"] > open_since:
            return str(session["pre_entrustweb_id"])
    return None

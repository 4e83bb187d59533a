"""The sandbox plays the WeChat user: signing or ending a contract makes WeChat Pay notify the merchant.

``WeChatUser`` works on a ``SandboxState``: it builds ECOMMERCE_ENTRUST.SIGN and .TERMINATE notifications
from the accepted pre-signs (``outgoing``), records what the user did in the contract book, and delivers
them over HTTP (``delivery``). The pre-sign of an ``out_contract_code`` supplies appid, plan_id, attach
and the ``notify_url``; keyword overrides replace any resource field, so tests can also describe a
contract signed through another channel, or one whose notification does not match the merchant's records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

from . import outgoing
from .delivery import Courier
from .outgoing import OutgoingNotification
from .records import Delivery
from .state import SandboxState


class WeChatUser:
    """What the user (and WeChat Pay's notifier) does to the contracts in ``state``. Holds nothing of its own:
    make one whenever needed. Where notifications go follows ``state.notify_rewrite`` and
    ``state.termination_notify_url``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._courier = Courier(state.deliveries)

    def presign_for(self, out_contract_code: str) -> dict[str, Any] | None:
        """The latest accepted pre-sign of ``out_contract_code``, or None if the sandbox never had one."""
        return self.state.contracts.latest_presign(out_contract_code)

    # --- building -----------------------------------------------------------------------------

    def sign_notification(
        self,
        out_contract_code: str,
        *,
        openid: str | None = None,
        operate_time: datetime | str | None = None,
        contract_expired_time: datetime | str | None = None,
        contract_id: str | None = None,
        url: str | None = None,
        **resource_overrides: Any,
    ) -> OutgoingNotification:
        """ECOMMERCE_ENTRUST.SIGN for the user signing ``out_contract_code`` (nothing is sent).

        ``operate_time`` defaults to now, ``contract_expired_time`` to five years later. ``contract_id`` is
        left out, as WeChat Pay documents, unless given or ``state.notify_contract_id`` is on (then it is the
        id the query answers); ``contract_id=""`` leaves it out either way. An override set to None removes
        its field.
        """
        operated = outgoing.rfc3339(operate_time)
        resource = self._entrust_resource(out_contract_code, openid, operated, contract_id, resource_overrides)
        expires = contract_expired_time if contract_expired_time is not None else outgoing.years_after(operated)
        resource = _with(resource, {"contract_expired_time": outgoing.rfc3339(expires)}, resource_overrides)
        return self.notification(wechatpay.SIGN_EVENT, resource, url=url)

    def terminate_notification(
        self,
        out_contract_code: str,
        *,
        mode: str = wechatpay.USER_TERMINATE,
        operate_time: datetime | str | None = None,
        url: str | None = None,
        **resource_overrides: Any,
    ) -> OutgoingNotification:
        """ECOMMERCE_ENTRUST.TERMINATE for the contract ending in ``mode`` (``contract_termination_mode``)."""
        operated = outgoing.rfc3339(operate_time)
        contract_id = resource_overrides.pop("contract_id", None)
        resource = self._entrust_resource(out_contract_code, None, operated, contract_id, resource_overrides)
        resource = _with(resource, {"contract_termination_mode": mode}, resource_overrides)
        return self.notification(wechatpay.TERMINATE_EVENT, resource, url=url)

    def notification(
        self,
        event_type: str,
        resource: dict[str, Any],
        *,
        url: str | None = None,
        notification_id: str | None = None,
        apiv3_key: str | bytes | None = None,
        private_key: rsa.RSAPrivateKey | str | bytes | None = None,
        serial: str | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
        body: bytes | None = None,
        associated_data: str | None = wechatpay.ENTRUST_ASSOCIATED_DATA,
    ) -> OutgoingNotification:
        """Any notification, sealed with ``apiv3_key`` and signed with ``private_key`` (the sandbox's own
        by default); every argument overrides one thing WeChat Pay would get right.

        Without ``url`` it goes where the resource's ``out_contract_code`` notifies (nowhere, ``url == ""``,
        for a contract the sandbox never pre-signed: fine for a test client, refused by ``deliver``);
        ``notify_rewrite`` applies either way.
        """
        if isinstance(private_key, (str, bytes)):
            private_key = crypto.load_private_key(private_key)
        target = self._target(event_type, resource.get("out_contract_code"), url)
        signing_key, signing_serial = self.state.signer()  # the public key, or the current certificate
        return outgoing.build(
            event_type,
            resource,
            url=self.state.rewrite(target),
            apiv3_key=self.state.apiv3_key if apiv3_key is None else apiv3_key,
            private_key=private_key or signing_key,
            serial=signing_serial if serial is None else serial,
            notification_id=notification_id,
            timestamp=timestamp,
            signature=signature,
            body=body,
            associated_data=associated_data,
        )

    # --- delivering ---------------------------------------------------------------------------

    def deliver(
        self, notification: OutgoingNotification, *, repeat: int = 1, delay: float = 0.0, wait: bool = True
    ) -> list[Delivery]:
        """POST ``notification`` ``repeat`` times after ``delay`` seconds; each redelivery is re-signed with
        a fresh timestamp and nonce, same id and body, as WeChat Pay retries. ``wait=False`` returns ``[]``
        at once and delivers from a daemon thread. A receiver that cannot be reached gives status None."""
        return self._courier.deliver(notification, repeat=repeat, delay=delay, wait=wait)

    def sign_contract(
        self,
        out_contract_code: str,
        *,
        repeat: int = 1,
        delay: float = 0.0,
        wait: bool = True,
        drop: bool = False,
        **sign_kwargs: Any,
    ) -> list[Delivery]:
        """The user signs: WeChat Pay records the contract as SIGNED (what the query endpoint answers), builds
        ``sign_notification(out_contract_code, **sign_kwargs)`` and delivers it — unless ``drop``, the
        notification lost after all of WeChat Pay's retries."""
        notification = self.sign_notification(out_contract_code, **sign_kwargs)
        self.record(notification)
        return [] if drop else self.deliver(notification, repeat=repeat, delay=delay, wait=wait)

    def terminate_contract(
        self,
        out_contract_code: str,
        *,
        repeat: int = 1,
        delay: float = 0.0,
        wait: bool = True,
        drop: bool = False,
        **terminate_kwargs: Any,
    ) -> list[Delivery]:
        """The contract ends: recorded as TERMINATED, ``terminate_notification(out_contract_code,
        **terminate_kwargs)`` built and delivered (unless ``drop``)."""
        notification = self.terminate_notification(out_contract_code, **terminate_kwargs)
        self.record(notification)
        return [] if drop else self.deliver(notification, repeat=repeat, delay=delay, wait=wait)

    def record(self, notification: OutgoingNotification) -> None:
        """WeChat Pay's own record follows what the user did, whether or not the notification arrives."""
        resource = notification.resource
        if notification.event_type == wechatpay.SIGN_EVENT:
            # WeChat Pay gives every signed contract its id, whether or not the notification shows it.
            code = resource["out_contract_code"]
            contract_id = resource.get("contract_id") or outgoing.fake_contract_id(self.state.mchid, code)
            self.state.contracts.signed({**resource, "contract_id": contract_id})
        elif notification.event_type == wechatpay.TERMINATE_EVENT:
            self.state.contracts.terminated(
                resource["out_contract_code"],
                mode=resource["contract_termination_mode"],
                at=resource["operate_time"],
                plan_id=resource.get("plan_id"),
                appid=resource.get("appid"),
                openid=resource.get("openid"),
            )

    def deliver_out_of_order(self, first: OutgoingNotification, second: OutgoingNotification) -> list[Delivery]:
        """Send ``second`` and then ``first`` (e.g. TERMINATE before the SIGN it follows); one attempt each."""
        return self._courier.deliver_in_order([second, first])

    # --- helpers ------------------------------------------------------------------------------

    def _entrust_resource(
        self,
        out_contract_code: str,
        openid: str | None,
        operate_time: str,
        contract_id: str | None,
        overrides: dict[str, Any],
    ) -> dict[str, Any]:
        """The fields SIGN and TERMINATE share, from the pre-sign or, without one, from the overrides."""
        presign = self.presign_for(out_contract_code) or {}
        missing = [name for name in ("plan_id", "appid") if name not in presign and name not in overrides]
        if missing:
            wanted = ", ".join(f"{name}=" for name in missing)
            raise ValueError(
                f"the sandbox never pre-signed {out_contract_code!r}; pass {wanted} (and url= to deliver it) to "
                "notify about a contract signed through another channel"
            )
        resource: dict[str, Any] = {
            "mchid": self.state.mchid,
            "out_contract_code": out_contract_code,
            "plan_id": presign.get("plan_id"),
            "appid": presign.get("appid"),
            "openid": openid if openid is not None else outgoing.fake_openid(out_contract_code),
            "operate_time": operate_time,
        }
        if contract_id is None and self.state.notify_contract_id:
            contract_id = outgoing.fake_contract_id(self.state.mchid, out_contract_code)
        if contract_id:
            resource["contract_id"] = contract_id
        if "attach" in presign:
            resource["attach"] = presign["attach"]
        return resource

    def _target(self, event_type: str, out_contract_code: Any, url: str | None) -> str:
        """Where a notification goes before rewriting: ``url``, else the template's termination URL for
        TERMINATE, else the pre-sign's ``notify_url``, else nowhere ("": it can be built, not delivered)."""
        if url is not None:
            return url
        if event_type == wechatpay.TERMINATE_EVENT and self.state.termination_notify_url:
            return self.state.termination_notify_url
        presign = self.presign_for(out_contract_code) if isinstance(out_contract_code, str) else None
        return str(presign["notify_url"]) if presign is not None else ""


def _with(resource: dict[str, Any], fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``resource`` plus ``fields``, then the overrides (in place, keeping field order); None removes a field."""
    combined = {**resource, **fields, **overrides}
    return {name: value for name, value in combined.items() if value is not None}

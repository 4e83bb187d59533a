"""This run's merchant calling a sandbox over real HTTP, signing as django-papay's client does (test helper)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from django_papay import crypto, wechatpay
from django_papay.sandbox import Sandbox

from .helpers import APPID, MCHID, MERCHANT_SERIAL_NO, PLAN_ID, WECHATPAY_PUBLIC_KEY_ID, Keys, signature_verifies

PRESIGN_PATH = wechatpay.APP_PRESIGN_PATH


def presign_body(**changes: Any) -> dict[str, Any]:
    body = {
        "appid": APPID,
        "plan_id": PLAN_ID,
        "out_contract_code": "Contract20250101A1",
        "contract_display_account": "Demo user",
        "notify_url": "https://example.com/papay/notify/",
        "return_app": True,
    }
    body.update(changes)
    return body


@dataclass(frozen=True)
class Merchant:
    """This run's merchant calling ``sandbox``, signing as its client does."""

    sandbox: Sandbox
    keys: Keys

    def post(
        self,
        payload: Any = None,
        *,
        path: str = PRESIGN_PATH,
        method: str = "POST",
        key: Any = None,
        timestamp: int | None = None,
        headers: dict[str, Any] | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        body = b"" if method == "GET" else json.dumps(presign_body() if payload is None else payload).encode()
        authorization = crypto.authorization(
            mchid=MCHID,
            serial_no=MERCHANT_SERIAL_NO,
            private_key=key or self.keys.merchant,
            method=method,
            url=path,
            body=body,
            timestamp=timestamp,
        )
        all_headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "django-papay-tests",
            wechatpay.SERIAL_HEADER: WECHATPAY_PUBLIC_KEY_ID,
            **(headers or {}),
        }
        return requests.request(method, self.sandbox.url + path, data=body, headers=all_headers, timeout=timeout)

    def verifies(self, response: requests.Response, public_key: Any = None) -> bool:
        """The answer's signature verifies with WeChat Pay's public key (or ``public_key``)."""
        return signature_verifies(response.headers, response.content, public_key or self.keys.wechatpay.public_key())


def assert_error(merchant: Merchant, response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert merchant.verifies(response)
    return response.json()

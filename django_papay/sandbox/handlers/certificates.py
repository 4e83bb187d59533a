"""``GET /v3/certificates``: the merchant's platform certificates, each sealed with the APIv3 key."""

from __future__ import annotations

import re

from django_papay import wechatpay

from ..records import RecordedRequest
from ..replies import ApiError, Reply
from ..state import SandboxState


def download(state: SandboxState, request: RecordedRequest, match: re.Match[str]) -> Reply:
    """The issued certificates, or 404 RESOURCE_NOT_EXISTS for a public-key-only merchant (none issued)."""
    if not state.certificates.issued:
        message = "无可用的平台证书，请使用微信支付公钥 (sandbox: none issued)"
        raise ApiError(404, wechatpay.RESOURCE_NOT_EXISTS, message)
    return Reply.json(200, state.certificates.listing(state.apiv3_key))

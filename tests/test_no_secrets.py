"""The whole flow at DEBUG logging: no private key, APIv3 key, request signature or Authorization header
in any log record, admin page or exception text."""

import logging
import re

import pytest
from django.urls import reverse

from django_papay import crypto
from django_papay.exceptions import PapayError
from django_papay.models import Contract, Notification
from django_papay.services import presign, query, terminate

from .helpers import deliver

pytestmark = pytest.mark.django_db


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        self.texts.append(self.format(record))  # message, arguments and any traceback


def _secrets(keys, sandbox) -> list[str]:
    pem_body = "".join(keys.merchant_pem.splitlines()[1:-1])
    secrets = [keys.apiv3_key, keys.merchant_pem]
    # any 32-character stretch of the private key's base64, so a partial leak is caught too
    secrets += [pem_body[i : i + 32] for i in range(0, len(pem_body) - 32, 32)]
    for request in sandbox.requests:
        authorization = request.headers.get("Authorization", "")
        if authorization:
            secrets += [authorization, crypto.parse_authorization(authorization)["signature"]]
    return secrets


def test_no_secret_in_logs_admin_pages_or_errors(papay, sandbox, keys, settings, admin_client):
    handler = Everything()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    errors: list[str] = []
    try:
        contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a"))
        notification = sandbox.sign_notification(contract.out_contract_code)
        sandbox.record(notification)  # the user signed: WeChat Pay's own book says so too
        deliver(notification)
        query(contract)
        for fault in ("system_error", "bad_signature", "reset", "unknown_serial"):
            sandbox.fail_next(fault)
            try:
                query(contract)
            except PapayError as exc:
                errors.append(f"{exc!s} {exc!r} {vars(exc)}")
        terminate(contract, "bye")
        wrong = {**settings.PAPAY, "MERCHANT_PRIVATE_KEY": keys.merchant_pem.replace("A", "B", 5)}
        settings.PAPAY = wrong
        try:
            presign(Contract.objects.create(plan_id=12535, contract_display_account="b"))
        except Exception as exc:  # an unreadable key must not be echoed either
            errors.append(f"{exc!s} {exc!r}")
        settings.PAPAY = {**wrong, "MERCHANT_PRIVATE_KEY": keys.merchant_pem}

        urls = [reverse("admin:django_papay_contract_changelist")]
        urls += [reverse("admin:django_papay_contract_change", args=[c.pk]) for c in Contract.objects.all()]
        urls += [reverse("admin:django_papay_notification_change", args=[n.pk]) for n in Notification.objects.all()]
        pages = [admin_client.get(url).content.decode() for url in urls]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    assert len(sandbox.requests) == 7 and handler.texts and len(errors) == 5
    assert any("Request-ID" in text for text in handler.texts)  # the client did log its calls
    haystacks = {"log": "\n".join(handler.texts), "admin": "\n".join(pages), "errors": "\n".join(errors)}
    for where, text in haystacks.items():
        for secret in _secrets(keys, sandbox):
            assert secret not in text, f"a secret leaked into the {where}: {secret[:12]}…"
        assert not re.search(r"WECHATPAY2-SHA256-RSA2048 mchid=", text), f"an Authorization header in the {where}"

"""Plain helpers the tests share: this run's merchant, its settings and sandbox, WeChat Pay's deliveries,
the admin's actions and messages, and a recorder for django_papay's signals. Fixtures live in conftest.py.

Test modules import from here, never from one another (nor from conftest.py).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.messages import get_messages
from django.db import connection, models
from django.dispatch import Signal
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from selenium import webdriver

from django_papay import crypto, wechatpay
from django_papay.models import Contract
from django_papay.sandbox import Sandbox
from django_papay.services import presign, query

# --- this run's merchant --------------------------------------------------------------------

MCHID = "1900000109"
MERCHANT_SERIAL_NO = "3775B6A45ACD588826D15E583A95F5DD21FE7D2B"
WECHATPAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026112600000000000001"
APPID = "wxd678efh567hg6787"
NOTIFY_URL = "https://merchant.example/papay/notify/"
PLAN_ID = 12535  # the 委托代扣协议模板 the suite's contracts are signed under

PRESIGN = wechatpay.APP_PRESIGN_PATH
CERTIFICATES = wechatpay.CERTIFICATES_PATH


@dataclass(frozen=True)
class Keys:
    """This run's keys (the ``keys`` session fixture makes them): the merchant's, WeChat Pay's, the APIv3 key,
    and a stranger's RSA key that neither side holds, for forgeries and impostors."""

    merchant: rsa.RSAPrivateKey
    wechatpay: rsa.RSAPrivateKey
    apiv3_key: str
    stranger: rsa.RSAPrivateKey

    @property
    def merchant_pem(self) -> str:
        return crypto.private_key_pem(self.merchant)

    @property
    def wechatpay_public_pem(self) -> str:
        return crypto.public_key_pem(self.wechatpay.public_key())


def make_sandbox(keys: Keys, **changes: Any) -> Sandbox:
    """A sandbox (not started) for this run's merchant; ``changes`` override any argument."""
    arguments = {
        "mchid": MCHID,
        "merchant_serial_no": MERCHANT_SERIAL_NO,
        "merchant_public_key": keys.merchant.public_key(),
        "wechatpay_private_key": keys.wechatpay,
        "wechatpay_public_key_id": WECHATPAY_PUBLIC_KEY_ID,
        "apiv3_key": keys.apiv3_key,
    }
    return Sandbox(**{**arguments, **changes})


def papay_settings(keys: Keys, base_url: str, **overrides: Any) -> dict[str, Any]:
    """A complete PAPAY dict for this run's merchant calling ``base_url``, verifying with the public key."""
    return {
        "MCHID": MCHID,
        "MERCHANT_SERIAL_NO": MERCHANT_SERIAL_NO,
        "MERCHANT_PRIVATE_KEY": keys.merchant_pem,
        "APIV3_KEY": keys.apiv3_key,
        "APPID": APPID,
        "NOTIFY_URL": NOTIFY_URL,
        "WECHATPAY_PUBLIC_KEY": keys.wechatpay_public_pem,
        "WECHATPAY_PUBLIC_KEY_ID": WECHATPAY_PUBLIC_KEY_ID,
        "BASE_URL": base_url,
        "TIMEOUT": (2.0, 2.0),
        **overrides,
    }


def certificates_only(keys: Keys, sandbox: Sandbox, **overrides: Any) -> dict[str, Any]:
    """PAPAY for a merchant that verifies WeChat Pay with platform certificates alone."""
    papay = papay_settings(keys, sandbox.url, PLATFORM_CERTIFICATES=True, **overrides)
    del papay["WECHATPAY_PUBLIC_KEY"], papay["WECHATPAY_PUBLIC_KEY_ID"]
    return papay


def refused_url() -> str:
    """A loopback URL nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed


# --- calls to WeChat Pay --------------------------------------------------------------------


def presign_payload(code: str) -> dict[str, Any]:
    """An App pre-sign request body for ``out_contract_code`` ``code``, as the client would send it."""
    return {
        "appid": APPID,
        "plan_id": PLAN_ID,
        "out_contract_code": code,
        "contract_display_account": "tester",
        "notify_url": NOTIFY_URL,
    }


# The suite's charge: one sub-order, a month's membership (¥15.00) for sub-merchant 1900000201. Spread it into a
# new dict to change a field (``{**MEMBERSHIP, "amount": 300}``); never change these in place.
MEMBERSHIP = {"sub_mchid": "1900000201", "description": "会员月费", "amount": 1500}
SUB_ORDERS = [MEMBERSHIP]  # a deduction of that one sub-order
SUB_MCHID = MEMBERSHIP["sub_mchid"]
# Charged with profit sharing: ¥15.00 frozen in the sub-merchant's account; the platform's ¥1.50 commission.
SHARED_MEMBERSHIP = {**MEMBERSHIP, "profit_sharing": True}
COMMISSION = {"type": "MERCHANT_ID", "account": MCHID, "amount": 150, "description": "平台佣金"}


def signed_contracts(sandbox: Sandbox, count: int) -> list[Contract]:
    """``count`` new contracts, each pre-signed for real and signed by its user at WeChat Pay, the notification
    lost, then learnt by a query: SIGNED here and at WeChat Pay (the ``signed_contract`` fixture, ``count`` times)."""
    contracts = []
    for number in range(count):
        contract = presign(Contract.objects.create(plan_id=PLAN_ID, contract_display_account=f"user {number}"))
        sandbox.sign_contract(contract.out_contract_code, drop=True)
        contracts.append(query(contract))
    return contracts


def downloads(sandbox: Sandbox) -> int:
    """How many times the sandbox was asked for its platform certificates."""
    return sum(1 for request in sandbox.requests if request.path == CERTIFICATES)


def signature_verifies(headers: Any, body: bytes, public_key: rsa.RSAPublicKey) -> bool:
    """Whether WeChat Pay's Wechatpay-Timestamp, -Nonce and -Signature headers sign ``body`` under
    ``public_key``: the check a merchant makes on every answer and notification."""
    message = crypto.response_message(headers[wechatpay.TIMESTAMP_HEADER], headers[wechatpay.NONCE_HEADER], body)
    return crypto.verify(public_key, message, headers[wechatpay.SIGNATURE_HEADER])


# --- WeChat Pay's calls to the site ---------------------------------------------------------


def deliver(notification: Any, client: Client | None = None, **extra_headers: str) -> HttpResponse:
    """POST a notification to the notify view exactly as WeChat Pay sends it: the same bytes and headers,
    through a CSRF-enforcing test client. ``extra_headers`` replace or add headers (forgeries)."""
    headers = {k: v for k, v in notification.headers.items() if k.lower() != "content-type"}
    return (client or Client(enforce_csrf_checks=True)).post(
        reverse("django_papay:notify"),
        data=notification.body,
        content_type="application/json",
        headers={**headers, **extra_headers},
    )


# --- the admin ------------------------------------------------------------------------------


CONTRACT_EDITOR = ("view_contract", "change_contract")  # what any staff working on contracts holds


def run_action(
    client: Client,
    changelist: str | type[models.Model],
    action: str,
    objects: Sequence[models.Model],
    **extra_post: Any,
) -> HttpResponse:
    """Tick ``objects`` on a changelist (its URL, or its model) and run ``action``, as staff would; the
    response is the page after the redirect. ``extra_post`` adds fields (a confirmation form's)."""
    if not isinstance(changelist, str):
        changelist = reverse(f"admin:{changelist._meta.app_label}_{changelist._meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], **extra_post}
    return client.post(changelist, data, follow=True)


HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def confirmation_form(
    client: Client, changelist: str | type[models.Model], action: str, objects: Sequence[models.Model]
) -> dict[str, list[str]]:
    """What a confirmation page posts back as it was shown (its hidden fields: the selection, the action, the
    numbers a deduct page chose): run ``action`` on ``objects`` without confirming, and read the page."""
    page = run_action(client, changelist, action, objects).content.decode()
    form: dict[str, list[str]] = {}
    for name, value in HIDDEN_INPUT.findall(page):
        form.setdefault(name, []).append(value)
    return form


def sub_order_fields(*rows: dict[str, str]) -> dict[str, str]:
    """The charge page's sub-order rows as staff fill them in (``sub_mchid``, ``description``, ``amount`` in
    yuan), in the formset's field names, with its row count."""
    fields = {f"sub_orders-{n}-{name}": value for n, row in enumerate(rows) for name, value in row.items()}
    return {**fields, "sub_orders-TOTAL_FORMS": str(len(rows))}


def confirm_action(
    client: Client, changelist: str | type[models.Model], action: str, objects: Sequence[models.Model], **fields: Any
) -> HttpResponse:
    """Run ``action`` on ``objects``, then confirm its page as staff would: what it carries, with ``fields``
    filled in. The response is the page after the redirect."""
    if not isinstance(changelist, str):
        changelist = reverse(f"admin:{changelist._meta.app_label}_{changelist._meta.model_name}_changelist")
    form = confirmation_form(client, changelist, action, objects)
    return client.post(changelist, {**form, **fields}, follow=True)


def messages(response: HttpResponse) -> list[str]:
    """The messages the admin showed staff on this response."""
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- signals --------------------------------------------------------------------------------


class Fired(NamedTuple):
    """One sending of a watched signal: the name it was watched under, the pk of its contract (contract
    signals), deduction (deduction signals) or refund (refund signals), the notification that caused it (None
    when a query or an API call did, and always for deductions)."""

    signal: str
    pk: int | None
    notification: Any


class SignalRecorder:
    """Records each sending of the signals it watches, in order and from any thread.

    ``SignalRecorder(signed=contract_signed, terminated=contract_terminated)`` watches those two, naming
    them "signed" and "terminated"; the next signals are watched by passing them the same way. As a
    context manager it connects on entry, returns the list of ``Fired`` it fills, and disconnects on exit.
    """

    def __init__(self, **signals: Signal) -> None:
        self.signals = signals
        self.received: list[Fired] = []
        self._lock = threading.Lock()
        self._receivers = {name: self._receiver(name) for name in signals}

    def _receiver(self, name: str):
        def receive(sender: Any, **kwargs: Any) -> None:
            subject = kwargs.get("contract", kwargs.get("deduction", kwargs.get("refund", kwargs.get("share"))))
            with self._lock:
                self.received.append(Fired(name, getattr(subject, "pk", None), kwargs.get("notification")))

        return receive

    def __enter__(self) -> list[Fired]:
        for name, signal in self.signals.items():
            signal.connect(self._receivers[name], weak=False)
        return self.received

    def __exit__(self, *exc_info: object) -> None:
        for name, signal in self.signals.items():
            signal.disconnect(self._receivers[name])


@contextlib.contextmanager
def failing_receiver(signal: Signal, error: Exception) -> Iterator[None]:
    """Business code whose receiver of ``signal`` raises ``error`` (a CRM that is down), while in the block."""

    def broken(**kwargs: Any) -> None:
        raise error

    signal.connect(broken, weak=False)
    try:
        yield
    finally:
        signal.disconnect(broken)


# --- the App's endpoints (app_api.py) -------------------------------------------------------

OTHER_PLAN_ID = 12536  # a second plan users may sign from the App


def app_presign(client: Client, plan_id: Any = PLAN_ID, **body: Any) -> HttpResponse:
    """The App's tap on "开通免密支付": POST app/presign/ with ``{"plan_id": …, **body}``."""
    return client.post(
        reverse("django_papay:app-presign"), data={"plan_id": plan_id, **body}, content_type="application/json"
    )


def app_contract(client: Client, out_contract_code: str, *, refresh: bool = False) -> HttpResponse:
    """The App asking for a contract's state (``refresh``: "I'm back from WeChat", ask WeChat Pay)."""
    url = reverse("django_papay:app-contract", args=[out_contract_code])
    return client.get(url, {"refresh": "1"} if refresh else {})


def in_parallel(tasks: Sequence[Any]) -> list[Any]:
    """Run every task at the same moment, each in its own thread and database connection; an exception a
    task raised is returned in its place."""
    barrier = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)

    def worker(index: int, task: Any) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = task()
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=item) for item in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return results


# --- the admin in headless Chromium (the browser fixture is in conftest.py) ----------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Headless, and quiet: no sync, no component or field-trial downloads, nothing but the live server and loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
)
WAIT_SECONDS = 20


@contextlib.contextmanager
def evidence_on_failure(driver: webdriver.Chrome, tmp_path) -> Iterator[None]:
    """Save what the browser showed when a step failed, and say where (pytest shows the captured output)."""
    try:
        yield
    except Exception:
        screenshot, source = tmp_path / "failure.png", tmp_path / "failure.html"
        driver.save_screenshot(str(screenshot))
        source.write_text(driver.page_source, encoding="utf-8")
        print(f"browser at {driver.current_url}; screenshot {screenshot}, page source {source}")  # in the report
        raise


def orm_notify_path(monkeypatch: Any) -> None:
    """Turn PostgreSQL's short notify store off: every delivery goes through the ORM store (``Notification.save``)."""
    from django_papay.services import notify_postgresql

    monkeypatch.setattr(notify_postgresql, "usable", lambda *args: False)

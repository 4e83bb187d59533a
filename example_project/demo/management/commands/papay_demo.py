"""The demo: the whole 合单代扣 flow against the bundled sandbox, each step printed.

create a contract → pre-sign it → the sandbox signs as the user → WeChat Pay's notification reaches
this site's notify view → the contract is signed → charge it (two sub-merchants, the membership fee with
profit sharing: frozen) → share the platform's ¥1.50 commission and finish (the rest unfrozen) → refund ¥3.00
of the second sub-order (REFUND.SUCCESS reaches the notify view) → terminate it → the next charge is refused
with CONTRACT_NOT_EXIST → reconcile the day against the sandbox's trade bill.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils import timezone

from demo.site_server import SiteServer
from django_papay import wechatpay
from django_papay.exceptions import PapayError
from django_papay.models import Contract, Deduction, Reconciliation, Refund
from django_papay.services import deduct, presign, reconcile, refund
from django_papay.services.sharing import settle_share, share

ADMIN_HOST = "127.0.0.1"
REFUND_FEN = 300  # the delivery fee, given back
REFUND_WAIT = 10.0  # seconds to wait for the REFUND.SUCCESS notification
DEFAULT_ADMIN_PORT = 8000
# A membership fee to a shop (frozen until the platform took its commission) and a delivery fee to a courier,
# in fen.
SUB_ORDERS = [
    {"sub_mchid": "1900000201", "description": "会员月费 membership", "amount": 1500, "profit_sharing": True},
    {"sub_mchid": "1900000202", "description": "配送费 delivery", "amount": 300},
]


class Command(BaseCommand):
    help = "Run the APP signing flow against the bundled WeChat Pay sandbox (no WeChat credentials needed)."

    def add_arguments(self, parser):
        parser.add_argument("--plan-id", type=int, default=12535, help="deduction template id to use")
        parser.add_argument("--account", default="138****8888", help="contract_display_account to show the user")
        parser.add_argument(
            "--serve",
            action="store_true",
            help=f"afterwards keep the sandbox up and serve the admin and the App page at http://{ADMIN_HOST}:PORT/",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PAPAY_ADMIN_PORT", DEFAULT_ADMIN_PORT)),
            help=f"the admin's port with --serve (default $PAPAY_ADMIN_PORT, else {DEFAULT_ADMIN_PORT})",
        )

    def handle(self, *args, plan_id: int, account: str, serve: bool, port: int, **options):
        self.steps = 0
        if serve:  # before anything starts: a busy port found after the whole flow ran is a poor welcome
            _check_free(port, "the admin", "--port N or PAPAY_ADMIN_PORT=N")
            _check_free(settings.SANDBOX_PORT, "the sandbox", "PAPAY_SANDBOX_PORT=N")
        sandbox = self._start_sandbox(fixed_port=serve)
        try:
            self.step(f"WeChat Pay sandbox listening at {sandbox.url} (merchant {settings.PAPAY['MCHID']})")
            with SiteServer() as site:
                contract = self._flow(sandbox, site.url, plan_id, account)
                self._charge(sandbox, contract)
                self._reconcile()
                if serve:  # while this site still receives the SIGN: one contract the admin can charge
                    self._flow(sandbox, site.url, plan_id, account, quiet=True)
            if serve:
                self._serve(sandbox, f"{ADMIN_HOST}:{port}")
        finally:
            sandbox.stop()

    def _start_sandbox(self, *, fixed_port: bool):
        """The sandbox on PAPAY_SANDBOX_PORT (BASE_URL points there); for a one-off run any free port will do.

        It keeps its pre-signs and contracts in a state file next to the demo keys (git-ignored), so a
        restarted demo's sandbox still knows the contracts in the demo database.
        """
        keys = settings.DEMO_KEYS
        try:
            return keys.sandbox(port=settings.SANDBOX_PORT, state_file=keys.state_file).start()
        except OSError as exc:
            if fixed_port:
                raise CommandError(
                    f"cannot start the sandbox on 127.0.0.1:{settings.SANDBOX_PORT} ({exc.strerror}); "
                    "set PAPAY_SANDBOX_PORT to a free port"
                ) from exc
        sandbox = keys.sandbox(port=0, state_file=keys.state_file).start()
        settings.PAPAY = {**settings.PAPAY, "BASE_URL": sandbox.url}  # this run only
        self.stdout.write(f"(port {settings.SANDBOX_PORT} is busy; this run's sandbox uses {sandbox.url})")
        return sandbox

    def step(self, text: str) -> None:
        self.steps += 1
        self.stdout.write(f"[{self.steps}] {text}")

    def _flow(self, sandbox, site_url: str, plan_id: int, account: str, *, quiet: bool = False) -> Contract:
        """Create, pre-sign and sign a contract, each step printed; ``quiet``: one line for all of it."""
        if quiet:
            contract = Contract.objects.create(plan_id=plan_id, contract_display_account=account)
            presign(contract)
            sandbox.sign_contract(contract.out_contract_code)
            contract.refresh_from_db()
            self.step(
                f"for the admin: contract {contract.out_contract_code} is {contract.status}, ready to charge "
                "(Contracts → tick it → Charge with WeChat Pay (deduct)…)"
            )
            return contract
        notify_url = settings.PAPAY["NOTIFY_URL"]
        # The sandbox plays the TLS-terminating proxy: WeChat Pay's https URL reaches this loopback site.
        sandbox.notify_rewrite = {_origin(notify_url): site_url}
        self.step(f"this site's notify view serves {notify_url} at {site_url}{reverse('django_papay:notify')}")

        contract = Contract.objects.create(plan_id=plan_id, contract_display_account=account)
        self.step(f"created contract {contract.out_contract_code} (plan {plan_id}, status {contract.status})")
        try:
            presign(contract)
        except PapayError as exc:
            raise CommandError(f"pre-sign failed: {exc}") from exc
        expires = timezone.localtime(contract.presign_expires_at)
        self.step(f"pre-signed: pre_entrustweb_id {contract.pre_entrustweb_id} (valid until {expires:%H:%M %Z})")
        self.step(f"status = {contract.status}; the App now opens WeChat with that id")

        (delivery,) = sandbox.sign_contract(contract.out_contract_code)
        self.step(
            f"the user signs in WeChat: ECOMMERCE_ENTRUST.SIGN {delivery.notification_id} "
            f"delivered, the site answered HTTP {delivery.status}"
        )
        contract.refresh_from_db()
        if contract.status != Contract.Status.SIGNED:
            raise CommandError(f"the contract is {contract.status}, not signed; see the Notification admin")
        # WeChat Pay's SIGN carries no contract_id (as documented); the first charge queries it.
        contract_id = contract.contract_id or "not in it: a query gives it"
        self.step(
            f"status = {contract.status} (openid {contract.openid}, contract_id {contract_id}, "
            f"expires {timezone.localtime(contract.contract_expired_at):%Y-%m-%d})"
        )
        return contract

    def _charge(self, sandbox, contract: Contract) -> None:
        """Charge the signed contract, end it, and show that a terminated contract cannot be charged."""
        deduction = deduct(contract, SUB_ORDERS)
        if deduction.status != Deduction.Status.SUCCEEDED:
            raise CommandError(f"the charge is {deduction.status}: {deduction.last_error}")
        self.step(
            f"charged ¥{deduction.total_amount / 100:.2f} without a password: deduction "
            f"{deduction.combine_out_trade_no} {deduction.status}"
        )
        for sub_order in deduction.sub_orders.all():
            self.step(
                f"  sub-merchant {sub_order.sub_mchid}: ¥{sub_order.amount / 100:.2f} {sub_order.trade_state}, "
                f"transaction_id {sub_order.transaction_id}"
            )
        self._share(sandbox, deduction.sub_orders.get(profit_sharing=True))
        self._refund(sandbox, deduction)
        # The user ends the contract in WeChat; its TERMINATE notification is still on its way.
        sandbox.terminate_contract(contract.out_contract_code, drop=True)
        self.step("the user ends the contract in WeChat (the notification has not arrived yet)")
        with _quiet("django_papay.deductions"):  # its warning is the next step, said once and numbered
            refused = deduct(contract, SUB_ORDERS[:1])
        contract.refresh_from_db()
        if refused.status != Deduction.Status.FAILED or "CONTRACT_NOT_EXIST" not in refused.last_error:
            raise CommandError(f"the charge after termination is {refused.status}: {refused.last_error}")
        self.step(
            f"the next charge is refused: deduction {refused.combine_out_trade_no} {refused.status} — "
            f"{refused.last_error}"
        )
        self.step(f"so the contract was queried: status = {contract.status} ({contract.termination_mode})")

    def _share(self, sandbox, sub_order) -> None:
        """The platform takes its commission (PAPAY["COMMISSION"]: 10 %) and unfreezes the rest (分账, 完结)."""
        platform, shop = settings.PAPAY["MCHID"], sub_order.sub_mchid
        before = {mchid: sandbox.balance(mchid) for mchid in (platform, shop)}
        self.step(
            f"  {shop}'s ¥{sub_order.amount / 100:.2f} is frozen (charged with profit_sharing) until the platform "
            "shares and finishes"
        )
        try:
            shared = settle_share(share(sub_order))  # answered PROCESSING; FINISHED on the query
        except PapayError as exc:
            raise CommandError(f"sharing failed: {exc}") from exc
        receiver = shared.receivers.get()
        self.step(
            f"shared ¥{receiver.amount / 100:.2f} commission to the platform {receiver.account} and finished: "
            f"profit share {shared.out_order_no} {shared.status}, receiver {receiver.result}"
        )
        for mchid, label in ((platform, "platform"), (shop, "sub-merchant")):
            was, now = before[mchid], sandbox.balance(mchid)
            self.step(
                f"  {label} {mchid}: frozen ¥{was['frozen'] / 100:.2f} → ¥{now['frozen'] / 100:.2f}, "
                f"available ¥{was['available'] / 100:.2f} → ¥{now['available'] / 100:.2f}"
            )

    def _refund(self, sandbox, deduction: Deduction) -> None:
        """Give the delivery fee back: the refund is accepted, and REFUND.SUCCESS reaches the notify view."""
        delivery_fee = deduction.sub_orders.order_by("pk")[1]
        made = refund(delivery_fee, REFUND_FEN, reason="配送取消 delivery cancelled")
        self.step(
            f"refund ¥{made.amount / 100:.2f} of sub-order {delivery_fee.out_trade_no}: {made.out_refund_no} "
            f"{made.status} (accepted; the result comes by notification)"
        )
        deadline = time.monotonic() + REFUND_WAIT
        delivered = []
        while not delivered and time.monotonic() < deadline:
            delivered = [d for d in sandbox.deliveries if d.event_type == wechatpay.REFUND_SUCCESS_EVENT]
            time.sleep(0.05)
        if not delivered:
            raise CommandError("no REFUND.SUCCESS notification came; see the sandbox's log")
        made.refresh_from_db()
        self.step(
            f"WeChat Pay refunds it: {wechatpay.REFUND_SUCCESS_EVENT} {delivered[0].notification_id} delivered, "
            f"the site answered HTTP {delivered[0].status}"
        )
        if made.status != Refund.Status.SUCCEEDED:
            raise CommandError(f"the refund is {made.status}: {made.last_error}")
        self.step(
            f"refund {made.out_refund_no} {made.status}: ¥{delivery_fee.refunded_amount / 100:.2f} refunded, "
            f"¥{delivery_fee.refundable_amount / 100:.2f} of ¥{delivery_fee.amount / 100:.2f} left to refund"
        )

    def _reconcile(self) -> None:
        """Reconcile today against the sandbox's bill (WeChat Pay's own is ready the next morning)."""
        today = timezone.now().astimezone(wechatpay.BEIJING).date()
        report = reconcile(today)
        if report.status in (Reconciliation.Status.FAILED, Reconciliation.Status.NOT_READY):
            raise CommandError(f"reconciling {today} {report.get_status_display()}: {report.error}")
        self.step(
            f"reconciled {today} against the sandbox's trade bill: {report.get_status_display()} — "
            f"{report.payments_theirs} payment{'s' * (report.payments_theirs != 1)} "
            f"¥{report.payments_amount_theirs / 100:.2f} in the bill, "
            f"{report.payments_ours} here ¥{report.payments_amount_ours / 100:.2f}; "
            f"{report.refunds_theirs} refund{'s' * (report.refunds_theirs != 1)} "
            f"¥{report.refunds_amount_theirs / 100:.2f} in the bill, "
            f"{report.refunds_ours} here ¥{report.refunds_amount_ours / 100:.2f}"
        )
        for found in report.discrepancies.all()[:10]:  # an earlier run's database deleted, its sandbox kept
            self.stdout.write(f"    {found.get_kind_display()}: {found.out_trade_no} {found.note}")

    def _serve(self, sandbox, address: str) -> None:
        sandbox.notify_rewrite = {_origin(settings.PAPAY["NOTIFY_URL"]): f"http://{address}"}
        user, created = get_user_model().objects.get_or_create(
            username="demo", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password("demo")
            user.save()
        user.user_permissions.add(Permission.objects.get(codename="presign_contract"))
        self.stdout.write(
            f"\nApp:   http://{address}/app/ — the page that plays your App: sign up, sign in WeChat (the\n"
            "       sandbox plays the user), and watch the status turn to signed.\n"
            f"Admin: http://{address}/admin/ (user demo, password demo). Pre-sign a contract there, then\n"
            f"play the user:  curl -X POST {sandbox.url}/sandbox/contracts/<out_contract_code>/sign\n"
            f"           or:  curl -X POST {sandbox.url}/sandbox/contracts/<out_contract_code>/terminate\n"
            f'see an error:   curl -X POST {sandbox.url}/sandbox/faults -d \'{{"fault": "system_error"}}\'\n'
            "                (the next call to WeChat Pay fails with it; also ratelimit, unavailable, timeout…)\n"
            "refund:         Refund… on a deduction; to make the next refunds end abnormal (or PROCESSING, CLOSED):\n"
            f'                curl -X POST {sandbox.url}/sandbox/refunds -d \'{{"outcome": "ABNORMAL"}}\'\n'
            "Ctrl-C stops both."
        )
        call_command("runserver", address, use_reloader=False)


@contextmanager
def _quiet(name: str):
    """The logger ``name`` holds its warnings back meanwhile (errors still show)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_free(port: int, what: str, how: str) -> None:
    """CommandError unless ``port`` can be listened on at 127.0.0.1 (it is released again at once)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no obstacle
        try:
            probe.bind((ADMIN_HOST, port))
        except OSError as exc:
            raise CommandError(
                f"{what} cannot listen on {ADMIN_HOST}:{port} ({exc.strerror}); choose a free port with {how}"
            ) from exc


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

"""The demo: start the bundled sandbox, create a contract, pre-sign it, print each step."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from django_papay.exceptions import PapayError
from django_papay.models import Contract
from django_papay.services import presign

ADMIN_ADDRESS = "127.0.0.1:8000"


class Command(BaseCommand):
    help = "Run the APP pre-sign flow against the bundled WeChat Pay sandbox (no WeChat credentials needed)."

    def add_arguments(self, parser):
        parser.add_argument("--plan-id", type=int, default=12535, help="deduction template id to use")
        parser.add_argument("--account", default="138****8888", help="contract_display_account to show the user")
        parser.add_argument(
            "--serve", action="store_true",
            help=f"afterwards keep the sandbox up and serve the admin at http://{ADMIN_ADDRESS}/admin/",
        )

    def handle(self, *args, plan_id: int, account: str, serve: bool, **options):
        step = self._stepper()
        try:
            sandbox = settings.DEMO_KEYS.sandbox(port=settings.SANDBOX_PORT).start()
        except OSError as exc:
            raise CommandError(
                f"cannot start the sandbox on 127.0.0.1:{settings.SANDBOX_PORT} ({exc.strerror}); "
                "set PAPAY_SANDBOX_PORT to a free port"
            ) from exc
        try:
            step(f"WeChat Pay sandbox listening at {sandbox.url} (merchant {settings.PAPAY['MCHID']})")
            contract = Contract.objects.create(plan_id=plan_id, contract_display_account=account)
            step(f"created contract {contract.out_contract_code} (plan {plan_id}, status {contract.status})")
            try:
                presign(contract)
            except PapayError as exc:
                raise CommandError(f"pre-sign failed: {exc}") from exc
            step(f"pre-signed: POST {sandbox.requests[-1].path} -> signed answer verified")
            step(f"pre_entrustweb_id = {contract.pre_entrustweb_id}")
            expires = timezone.localtime(contract.presign_expires_at)
            step(f"status = {contract.status}; the user can sign in WeChat until {expires:%Y-%m-%d %H:%M %Z}")
            if serve:
                self._serve()
        finally:
            sandbox.stop()

    def _stepper(self):
        count = 0

        def step(text: str) -> None:
            nonlocal count
            count += 1
            self.stdout.write(f"[{count}] {text}")

        return step

    def _serve(self) -> None:
        user, created = get_user_model().objects.get_or_create(
            username="demo", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password("demo")
            user.save()
        user.user_permissions.add(Permission.objects.get(codename="presign_contract"))
        self.stdout.write(f"Admin: http://{ADMIN_ADDRESS}/admin/  (user demo, password demo). Ctrl-C stops both.")
        call_command("runserver", ADMIN_ADDRESS, use_reloader=False)

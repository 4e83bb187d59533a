"""``papay_certificates [--download]``: the WeChat Pay platform certificates this site trusts.

Without options it lists what is stored (no network). ``--download`` first fetches ``GET /v3/certificates``
now (waiting its turn behind any refresh in progress): run it from cron to refresh on a schedule.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...display import local_time
from ...exceptions import WeChatPayError
from ...models import PlatformCertificate
from ...services.certificates import refresh_certificates


class Command(BaseCommand):
    help = (
        "List the WeChat Pay platform certificates stored for all workers (serial, validity, source); "
        "with --download, fetch them from WeChat Pay first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--download", action="store_true", help="download the certificates from WeChat Pay now")

    def handle(self, *args, download: bool, **options):
        if download:
            try:
                refresh = refresh_certificates(force=True)
            except WeChatPayError as exc:
                raise CommandError(f"certificates not downloaded: {exc}") from exc
            added = ", ".join(refresh.added) or "none"
            self.stdout.write(f"downloaded {len(refresh.serials)} certificate(s) from WeChat Pay; new: {added}")
        now = timezone.now()
        certificates = list(PlatformCertificate.objects.order_by("-effective_time", "-pk"))
        if not certificates:
            self.stdout.write("no platform certificates stored")
            return
        for certificate in certificates:
            if certificate.expire_time <= now:
                state = "expired"
            elif certificate.effective_time > now:
                state = "not yet valid"
            else:
                state = "valid"
            self.stdout.write(
                f"{certificate.serial_no}  {state:<13}  {_local(certificate.effective_time)} → "
                f"{_local(certificate.expire_time)}  downloaded {_local(certificate.fetched_at)} "
                f"from {certificate.source or '-'}"
            )


def _local(moment) -> str:
    return local_time(moment)

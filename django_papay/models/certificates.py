"""WeChat Pay's platform certificates, stored for every worker, and the row downloads take turns on."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .stored_error import StoredError, last_error_message_field


class PlatformCertificate(models.Model):
    """A WeChat Pay platform certificate (平台证书) from ``GET /v3/certificates``, decrypted and checked.

    Stored in the database so every worker on every host verifies with the same set and only one of
    them downloads (see ``services.certificates``).
    """

    serial_no = models.CharField(_("serial number"), max_length=64, unique=True)
    pem = models.TextField(_("certificate (PEM)"))
    effective_time = models.DateTimeField(_("valid from"))
    expire_time = models.DateTimeField(_("valid until"), db_index=True)
    fetched_at = models.DateTimeField(_("downloaded at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=256, blank=True, help_text=_("The URL it was downloaded from."))

    class Meta:
        verbose_name = _("platform certificate")
        verbose_name_plural = _("platform certificates")
        ordering = ("-effective_time", "-pk")

    def __str__(self) -> str:
        return self.serial_no


class CertificateRefresh(StoredError, models.Model):
    """The single row (pk 1) that makes certificate downloads take turns across processes.

    A refresh claims it with one conditional UPDATE of ``attempted_at``: the row lock (PostgreSQL) or
    the database write lock (SQLite) holds every other refresher until the claimant's transaction ends,
    and the condition turns away whoever comes within the minimum interval (the rate limit).
    """

    attempted_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    succeeded_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()

    class Meta:
        verbose_name = _("platform certificate refresh")
        verbose_name_plural = _("platform certificate refreshes")

    def __str__(self) -> str:
        return str(_("platform certificate refresh"))

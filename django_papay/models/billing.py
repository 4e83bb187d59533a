"""Bulk work across workers: a billing run (many deductions sent by tasks)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class BillingRun(models.Model):
    """Many deductions created together and sent by tasks (``services.deduct_many``); its progress is theirs.

    Every deduction of a run is stored, CREATED, before the first is sent; each is then sent by whoever
    claims it (CREATED → PROCESSING), so enqueueing a run's sends twice never charges twice.
    """

    label = models.CharField(_("label"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.label or _("billing run %(pk)s") % {"pk": self.pk}

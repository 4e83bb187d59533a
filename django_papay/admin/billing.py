"""Billing runs in the admin: each run's progress, counted per status, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy

from ..models import BillingRun, Deduction
from .columns import ReadOnlyMixin

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

STATUSES = Deduction.Status


def _count(status: str, label: StrOrPromise):
    @admin.display(description=label)
    def column(self: BillingRunAdmin, run: BillingRun) -> str:
        url = reverse("admin:django_papay_deduction_changelist")
        query = urlencode({"billing_run": str(run.pk), "status": status})
        return format_html('<a href="{}?{}">{}</a>', url, query, getattr(run, status))

    return column


class BillingRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A run is its deductions: made by ``services.deduct_many``, never added, edited or deleted here."""

    list_display = ("__str__", "created_at", "total", "queued", *STATUSES.values)
    fields = ("label", "created_at")
    readonly_fields = fields

    created = _count(STATUSES.CREATED, gettext_lazy("created"))
    processing = _count(STATUSES.PROCESSING, gettext_lazy("processing"))
    succeeded = _count(STATUSES.SUCCEEDED, gettext_lazy("succeeded"))
    failed = _count(STATUSES.FAILED, gettext_lazy("failed"))
    reversed = _count(STATUSES.REVERSED, gettext_lazy("reversed"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[BillingRun]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                total=Count("deductions"),
                queued=Count(
                    "deductions",
                    filter=Q(deductions__status=STATUSES.CREATED, deductions__queued_at__isnull=False),
                ),
                **{status: Count("deductions", filter=Q(deductions__status=status)) for status in STATUSES.values},
            )
        )

    @admin.display(description=gettext_lazy("deductions"), ordering="total")
    def total(self, run: BillingRun) -> int:
        return int(run.total)  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description=gettext_lazy("queued"))
    def queued(self, run: BillingRun) -> int:
        return int(run.queued)  # type: ignore[attr-defined]  # annotated by get_queryset

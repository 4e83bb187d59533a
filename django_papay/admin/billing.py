"""Billing runs in the admin: each run's progress, counted per status, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy

from ..models import BillingRun, Deduction
from .columns import ReadOnlyMixin, local_times
from .large_tables import LargeTableAdmin

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


def _counted(**conditions: object) -> Coalesce:
    """A run's deductions (with ``conditions``) counted in a subquery per row shown: one page of runs costs one
    index range each (``papay_deduction_run_status``), never a join of every run with every deduction."""
    counted = (
        Deduction.objects.filter(billing_run=OuterRef("pk"), **conditions)
        .order_by()
        .values("billing_run")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@local_times(BillingRun, "created_at")
class BillingRunAdmin(ReadOnlyMixin, LargeTableAdmin):
    """A run is its deductions: made by ``services.deduct_many``, never added, edited or deleted here."""

    list_display = ("__str__", "created_at_local", "total", "queued", *STATUSES.values)
    fields = ("label", "created_at_local")
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
                total=_counted(),
                queued=_counted(status=STATUSES.CREATED, queued_at__isnull=False),
                **{status: _counted(status=status) for status in STATUSES.values},
            )
        )

    @admin.display(description=gettext_lazy("deductions"), ordering="total")
    def total(self, run: BillingRun) -> int:
        return int(run.total)  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description=gettext_lazy("queued"))
    def queued(self, run: BillingRun) -> int:
        return int(run.queued)  # type: ignore[attr-defined]  # annotated by get_queryset

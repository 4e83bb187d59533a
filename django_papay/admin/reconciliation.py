"""Reconciliations in the admin: each day's status and totals (ours and WeChat Pay's), its discrepancies inline,
a CSV export of them for the finance team, and running a day again. Reports are made by ``reconcile`` only."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.translation import gettext, gettext_lazy

from .. import dispatch
from ..models import Discrepancy, Reconciliation
from .columns import local_times
from .deductions import yuan

INLINE_ROWS = 200  # the page shows the first ones; the CSV export has them all
CSV_COLUMNS = (
    "bill_date",
    "sub_mchid",
    "kind",
    "row",
    "out_trade_no",
    "transaction_id",
    "out_refund_no",
    "refund_id",
    "discrepancy_sub_mchid",
    "amount_ours_fen",
    "amount_theirs_fen",
    "state_ours",
    "state_theirs",
    "fixed",
    "note",
)


class DiscrepancyInline(admin.TabularInline):
    model = Discrepancy
    fields = (
        "kind",
        "row",
        "out_trade_no",
        "transaction_id",
        "out_refund_no",
        "sub_mchid",
        "ours",
        "theirs",
        "state_ours",
        "state_theirs",
        "fixed",
        "note",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Discrepancy]:
        queryset = super().get_queryset(request)
        first = list(queryset.order_by("pk").values_list("pk", flat=True)[:INLINE_ROWS])
        return queryset.filter(pk__in=first)

    @admin.display(description=gettext_lazy("ours"))
    def ours(self, found: Discrepancy) -> str:
        return yuan(found.amount_ours) if found.amount_ours is not None else "-"

    @admin.display(description=gettext_lazy("WeChat Pay"))
    def theirs(self, found: Discrepancy) -> str:
        return yuan(found.amount_theirs) if found.amount_theirs is not None else "-"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@local_times(Reconciliation, "started_at", "finished_at")
class ReconciliationAdmin(admin.ModelAdmin):
    list_display = (
        "bill_date",
        "who",
        "status",
        "paid_theirs",
        "paid_ours",
        "refunded_theirs",
        "refunded_ours",
        "discrepancy_count",
        "fixed_count",
        "finished_at_local",
    )
    list_filter = ("status", "bill_date")
    search_fields = ("sub_mchid", "discrepancies__out_trade_no", "discrepancies__out_refund_no")
    fields = (
        "bill_date",
        "sub_mchid",
        "status",
        "error",
        "started_at_local",
        "finished_at_local",
        "bill_file",
        "hash_value",
        "bill_rows",
        "paid_theirs",
        "paid_ours",
        "refunded_theirs",
        "refunded_ours",
        "fees",
        "payments_theirs",
        "payments_ours",
        "refunds_theirs",
        "refunds_ours",
        "discrepancy_count",
        "fixed_count",
    )
    readonly_fields = fields
    inlines = (DiscrepancyInline,)
    actions = ("export_discrepancies", "reconcile_again")

    @admin.display(description=gettext_lazy("sub-merchant"), ordering="sub_mchid")
    def who(self, report: Reconciliation) -> str:
        return report.sub_mchid or gettext("all")

    @admin.display(description=gettext_lazy("paid (WeChat Pay)"))
    def paid_theirs(self, report: Reconciliation) -> str:
        return yuan(report.payments_amount_theirs)

    @admin.display(description=gettext_lazy("paid (ours)"))
    def paid_ours(self, report: Reconciliation) -> str:
        return yuan(report.payments_amount_ours)

    @admin.display(description=gettext_lazy("refunded (WeChat Pay)"))
    def refunded_theirs(self, report: Reconciliation) -> str:
        return yuan(report.refunds_amount_theirs)

    @admin.display(description=gettext_lazy("refunded (ours)"))
    def refunded_ours(self, report: Reconciliation) -> str:
        return yuan(report.refunds_amount_ours)

    @admin.display(description=gettext_lazy("fees (WeChat Pay)"))
    def fees(self, report: Reconciliation) -> str:
        return yuan(report.fees_theirs)

    @admin.action(description=gettext_lazy("Export the discrepancies as CSV"), permissions=["view"])
    def export_discrepancies(self, request: HttpRequest, queryset: QuerySet[Reconciliation]) -> StreamingHttpResponse:
        """Every discrepancy of the selected days, amounts in fen (what a spreadsheet sums exactly)."""
        response = StreamingHttpResponse(_csv_lines(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="papay-discrepancies.csv"'
        return response

    @admin.action(description=gettext_lazy("Reconcile again with WeChat Pay"), permissions=["reconcile"])
    def reconcile_again(self, request: HttpRequest, queryset: QuerySet[Reconciliation]) -> None:
        for report in queryset:
            result = dispatch.reconcile_day(report.bill_date, report.sub_mchid or None)
            if isinstance(result, dispatch.Queued):
                self.message_user(request, gettext("%(day)s: queued.") % {"day": report.bill_date})
                continue
            level = messages.SUCCESS if result.status == Reconciliation.Status.BALANCED else messages.WARNING
            self.message_user(
                request,
                gettext("%(day)s: %(status)s. %(error)s")
                % {"day": result.bill_date, "status": result.get_status_display(), "error": result.error},
                level,
            )

    def has_reconcile_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.reconcile")

    # A report is WeChat Pay's bill against our records: made by reconcile, never edited here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(reports: QuerySet[Reconciliation]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(CSV_COLUMNS)  # the BOM: spreadsheets then read the Chinese as UTF-8
    rows = (
        Discrepancy.objects.filter(reconciliation__in=reports)
        .select_related("reconciliation")
        .order_by("reconciliation__bill_date", "pk")
    )
    for found in rows.iterator(chunk_size=2000):
        report = found.reconciliation
        yield writer.writerow(
            [
                report.bill_date.isoformat(),
                report.sub_mchid,
                found.kind,
                found.row,
                found.out_trade_no,
                found.transaction_id,
                found.out_refund_no,
                found.refund_id,
                found.sub_mchid,
                "" if found.amount_ours is None else found.amount_ours,
                "" if found.amount_theirs is None else found.amount_theirs,
                found.state_ours,
                found.state_theirs,
                "yes" if found.fixed else "no",
                found.note,
            ]
        )

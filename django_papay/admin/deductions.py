"""Deductions in the admin: what was charged, in yuan for people (fen in the data), settle and reverse.

A deduction is WeChat Pay's word once sent, so nobody adds, edits or deletes one here; staff charge a
contract (the contracts' ``deduct`` action, ``charge.py``), settle what is open, and reverse what never finished.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import dispatch, services
from ..exceptions import PapayError
from ..models import Deduction, SubOrder
from .columns import ReadOnlyMixin, StatusColumns, badge, code, codes, local_times, yuan
from .confirmation import confirmation_page
from .large_tables import LargeTableAdmin
from .outcomes import LEVELS, describe
from .queueing import DeductionQueueFilter, say_settles_queued
from .sharing import SharingActions, describe_shares


@local_times(SubOrder, "success_time")
class SubOrderInline(admin.TabularInline):
    model = SubOrder
    fields = (
        "sub_mchid",
        "out_trade_no",
        "description",
        "amount_yuan",
        "trade_state",
        "transaction_id",
        "bank_type",
        "success_time_local",
        "payer_amount_yuan",
        "shares",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=gettext_lazy("amount"))
    def amount_yuan(self, sub_order: SubOrder) -> str:
        return yuan(sub_order.amount)

    @admin.display(description=gettext_lazy("payer amount"))
    def payer_amount_yuan(self, sub_order: SubOrder) -> str:
        return yuan(sub_order.payer_amount)

    @admin.display(description=gettext_lazy("profit sharing"))
    def shares(self, sub_order: SubOrder) -> str:
        return describe_shares(sub_order)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Part of its deduction: whoever may see the deduction sees its sub-orders.
        return request.user.has_perm("django_papay.view_deduction")


class CorrectedFilter(admin.SimpleListFilter):
    """The deductions a late answer from WeChat Pay corrected to succeeded: staff check the user paid once."""

    title = gettext_lazy("corrected")
    parameter_name = "corrected"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", _("corrected by a late answer"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> QuerySet[Deduction]:
        return queryset.exclude(corrected_from="") if self.value() == "yes" else queryset


@local_times(Deduction, "sent_at", "queried_at", "reverse_requested_at", "settled_at", "created_at", "updated_at")
@codes(Deduction, "combine_out_trade_no")
class DeductionAdmin(SharingActions, ReadOnlyMixin, StatusColumns, LargeTableAdmin):
    """Sent deductions come from ``services.deduct`` and are never added, edited or deleted here."""

    list_display = (
        "combine_out_trade_no_code",
        "contract_link",
        "total",
        "status_badge",
        "sent_at_local",
        "settled_at_local",
        "short_error",
    )
    list_filter = ("status", CorrectedFilter, DeductionQueueFilter, "sent_at", "created_at")
    # Exact numbers, each through its index (large_tables.py): ours, WeChat Pay's, the contract's.
    search_numbers = (
        "combine_out_trade_no",
        "sub_orders__out_trade_no",
        "sub_orders__transaction_id",
        "contract__out_contract_code",
        "contract__contract_id",
    )
    list_select_related = ("contract",)
    actions = ["settle", "reverse", "share_now", "finish_now"]
    inlines = [SubOrderInline]
    fields = (
        "combine_out_trade_no",
        "contract_link",
        "total",
        "status",
        "corrected_from",
        "error_display",
        "combine_appid",
        "combine_mchid",
        "risk_info",
        "openid",
        "sent_at_local",
        "queried_at_local",
        "reverse_requested_at_local",
        "settled_at_local",
        "created_at_local",
        "updated_at_local",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["django_papay/admin.css"]}

    @transaction.non_atomic_requests
    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Outside ATOMIC_REQUESTS: settle and reverse are posted here, and what they store must commit at once."""
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deduction]:
        return super().get_queryset(request).prefetch_related("sub_orders__shares__receivers")

    @admin.display(description=gettext_lazy("contract"), ordering="contract__out_contract_code")
    def contract_link(self, deduction: Deduction) -> str:
        return code(deduction.contract, reverse("admin:django_papay_contract_change", args=[deduction.contract_id]))

    @admin.display(description=gettext_lazy("total"))
    def total(self, deduction: Deduction) -> str:
        return yuan(deduction.total_amount)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, deduction: Deduction) -> str:
        sharing = self.sharing_badge(deduction)  # frozen / shared / finished, beside the charge's own status
        if not deduction.corrected_from:
            return format_html("{} {}", badge(deduction), sharing)
        was = _("was %(status)s") % {"status": deduction.get_corrected_from_display()}
        return format_html('{} <span class="papay-corrected">({})</span> {}', badge(deduction), was, sharing)

    def has_settle_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.settle_deduction")

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.reverse_deduction")

    @admin.action(
        description=gettext_lazy("Settle with WeChat Pay (query, reverse what never finished)"), permissions=["settle"]
    )
    def settle(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> None:
        settled_each = dispatch.settle_each(list(queryset.order_by("pk")))
        if isinstance(settled_each, dispatch.Queued):  # PAPAY["TASKS"]: the workers settle them
            say_settles_queued(self, request, settled_each)
            return
        for settled in settled_each:
            if settled.error is None:
                self.message_user(request, describe(settled.deduction, settled.note), LEVELS[settled.deduction.status])
            else:
                self.message_user(
                    request,
                    _("Deduction %(number)s: WeChat Pay could not tell — %(error)s")
                    % {"number": settled.deduction, "error": settled.error},
                    messages.ERROR,
                )

    @admin.action(description=gettext_lazy("Reverse at WeChat Pay…"), permissions=["reverse"])
    def reverse(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> TemplateResponse | None:
        deductions = list(queryset.order_by("pk"))
        if "confirm" in request.POST:
            for deduction in deductions:
                try:
                    services.reverse_deduction(deduction)
                except PapayError as exc:
                    self.message_user(
                        request,
                        _("Deduction %(number)s: not reversed — %(error)s") % {"number": deduction, "error": exc},
                        messages.ERROR,
                    )
                else:
                    self.message_user(request, describe(deduction), LEVELS[deduction.status])
            return None
        open_ = [d for d in deductions if d.status == Deduction.Status.PROCESSING]
        return confirmation_page(
            self,
            request,
            action="reverse",
            form=forms.Form(),
            ready=bool(open_),
            title=_("Reverse deductions at WeChat Pay"),
            submit_label=_("Reverse at WeChat Pay"),
            intro=_(
                "WeChat Pay will cancel (撤销) each processing deduction below with every one of its sub-orders; "
                "the user is not charged, or gets the money back. Others are skipped."
            ),
            items=[
                {
                    "object": d,
                    "label": yuan(d.total_amount),
                    "skipped": "" if d in open_ else _("(not processing: will be skipped)"),
                }
                for d in deductions
            ],
        )

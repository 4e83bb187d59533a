"""Refunds in the admin: what was given back, in yuan for people (fen in the data), and the calls staff may make.

A refund is WeChat Pay's word once sent, so nobody adds, edits or deletes one here. Staff refund a charged
sub-order from its deduction (the deductions' "Refund…" action: sub-order, amount in yuan and reason on a
page that shows what is left to refund; ``refund_deduction``), settle what is open, send a NOT_ENOUGH one again
as 垫付, and re-drive an ABNORMAL one (``retry_refund``). ``DeductionAdmin`` here is the deductions' admin with
their refunds: the table of them on the change page, and the action.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import dispatch, services, wechatpay
from ..exceptions import PapayError, describe_error
from ..models import Deduction, Refund, SubOrder, new_refund_no, refund_no_validator
from . import deductions
from .columns import StatusColumns, badge, code, codes, local_times, yuan
from .confirmation import confirmation_page
from .large_tables import LargeTableAdmin

PERMISSION = "django_papay.refund_deduction"
RETRY_PERMISSION = "django_papay.retry_refund"


class RefundForm(forms.Form):
    """One refund of one sub-order of the deduction: which, how much (in yuan, to the fen), why.

    The page carries the ``out_refund_no`` chosen when it is shown (a hidden field): the form posted again (a
    double click, a refresh) names the same refund, which ``refund`` finds stored and does not send again.
    """

    sub_order = forms.TypedChoiceField(label=gettext_lazy("sub-order"), coerce=int)
    amount = forms.DecimalField(
        label=gettext_lazy("amount (yuan)"),
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text=gettext_lazy("In yuan, e.g. 3.00; at most what is left to refund. Sent to WeChat Pay in fen."),
    )
    reason = forms.CharField(
        label=gettext_lazy("reason"),
        max_length=wechatpay.MAX_REFUND_REASON,
        required=False,
        help_text=gettext_lazy("Shown to the user (not for partial refunds of ¥1 or less)."),
    )
    out_refund_no = forms.CharField(widget=forms.HiddenInput, validators=[refund_no_validator])

    def __init__(self, data: Any = None, *, deduction: Deduction) -> None:
        super().__init__(data, initial={"out_refund_no": new_refund_no()})
        self.sub_orders = {sub_order.pk: sub_order for sub_order in deduction.sub_orders.all()}
        choices = [(pk, _choice(sub_order)) for pk, sub_order in self.sub_orders.items()]
        self.fields["sub_order"].choices = choices  # type: ignore[attr-defined]

    def chosen(self) -> SubOrder:
        return self.sub_orders[self.cleaned_data["sub_order"]]

    def fen(self) -> int:
        return int(self.cleaned_data["amount"] * 100)  # exact: at most two decimal places


def _choice(sub_order: SubOrder) -> str:
    return _("%(sub_mchid)s %(description)s — %(amount)s, refundable %(left)s") % {
        "sub_mchid": sub_order.sub_mchid,
        "description": sub_order.description,
        "amount": yuan(sub_order.amount),
        "left": yuan(sub_order.refundable_amount),
    }


def describe(refund: Refund) -> str:
    """One line for staff: the refund, its sub-order, amount and status, and what comes next."""
    text = _("Refund %(number)s (sub-order %(sub_order)s, %(amount)s): %(status)s") % {
        "number": refund,
        "sub_order": refund.sub_order,
        "amount": yuan(refund.amount),
        "status": refund.get_status_display(),
    }
    if refund.status == Refund.Status.PROCESSING:
        text += " — " + _("WeChat Pay reports the result by notification; papay_settle asks it otherwise")
    elif refund.status == Refund.Status.CREATED:
        text += " — " + _("queued to be sent")
    if refund.last_error and refund.status != Refund.Status.SUCCEEDED:
        text += f" ({refund.error_display()})"
    return text


LEVELS: dict[str, int] = {
    Refund.Status.CREATED: messages.SUCCESS,
    Refund.Status.PROCESSING: messages.SUCCESS,
    Refund.Status.SUCCEEDED: messages.SUCCESS,
    Refund.Status.ABNORMAL: messages.WARNING,
    Refund.Status.CLOSED: messages.WARNING,
    Refund.Status.FAILED: messages.ERROR,
}


class SubOrderInline(deductions.SubOrderInline):
    """A deduction's sub-orders, with how much of each is refunded and how much is left to refund."""

    fields = (*deductions.SubOrderInline.fields, "refunded", "refundable")  # type: ignore[assignment]
    readonly_fields = fields  # type: ignore[assignment]

    @admin.display(description=gettext_lazy("refunded"))
    def refunded(self, sub_order: SubOrder) -> str:
        return yuan(sub_order.refunded_amount)

    @admin.display(description=gettext_lazy("refundable"))
    def refundable(self, sub_order: SubOrder) -> str:
        return yuan(sub_order.refundable_amount)


class DeductionAdmin(deductions.DeductionAdmin):
    """The deductions' admin with their refunds: the refunds on the change page, and "Refund…"."""

    actions = [*deductions.DeductionAdmin.actions, "refund"]
    inlines = [
        SubOrderInline if inline is deductions.SubOrderInline else inline
        for inline in deductions.DeductionAdmin.inlines
    ]
    fields = (*deductions.DeductionAdmin.fields, "refunds")  # type: ignore[assignment]
    readonly_fields = fields  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deduction]:
        return super().get_queryset(request).prefetch_related("sub_orders__refunds")

    @admin.display(description=gettext_lazy("refunds"))
    def refunds(self, deduction: Deduction) -> str:
        rows = [
            (reverse("admin:django_papay_refund_change", args=[r.pk]), r, sub_order, yuan(r.amount), badge(r))
            for sub_order in deduction.sub_orders.all()
            for r in sub_order.refunds.all()
        ]
        if not rows:
            return "-"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> {} {} {}', rows)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)

    @admin.action(description=gettext_lazy("Refund…"), permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> TemplateResponse | None:
        """A page asking the sub-order, the amount in yuan and the reason, showing what is left to refund."""
        chosen = list(queryset.order_by("pk")[:2])
        if len(chosen) != 1:
            self.message_user(request, _("Choose one deduction to refund."), messages.WARNING)
            return None
        (deduction,) = chosen
        form = RefundForm(request.POST if "confirm" in request.POST else None, deduction=deduction)
        if form.is_bound and form.is_valid():
            _refund(self, request, form)
            return None
        charged = deduction.status == Deduction.Status.SUCCEEDED
        left = sum(sub_order.refundable_amount for sub_order in form.sub_orders.values())
        return confirmation_page(
            self,
            request,
            action="refund",
            form=form,
            ready=charged and left > 0,
            title=_("Refund with WeChat Pay"),
            submit_label=_("Refund"),
            intro=_(
                "WeChat Pay will give the amount back to the user from the sub-merchant's balance, once. "
                "Refundable: %(left)s of %(total)s."
            )
            % {"left": yuan(left), "total": yuan(deduction.total_amount)},
            items=[
                {
                    "object": deduction,
                    "label": yuan(deduction.total_amount),
                    "skipped": "" if charged else _("(not succeeded: nothing to refund)"),
                }
            ],
        )


def _refund(model_admin: admin.ModelAdmin, request: HttpRequest, form: RefundForm) -> None:
    number = form.cleaned_data["out_refund_no"]
    posted_before = Refund.objects.filter(out_refund_no=number).exists()
    data = form.cleaned_data
    try:
        made = dispatch.refund_one(form.chosen(), form.fen(), reason=data["reason"], out_refund_no=number)
    except ImproperlyConfigured as exc:
        model_admin.message_user(request, _("WeChat Pay is not configured: %s") % exc, messages.ERROR)
        return
    except (ValidationError, PapayError) as exc:
        model_admin.message_user(
            request, _("Not refunded — %(error)s") % {"error": describe_error(exc)}, messages.ERROR
        )
        return
    if posted_before:
        model_admin.message_user(
            request,
            _("Already made from this page (posted again): not refunded again. %(refund)s")
            % {"refund": describe(made)},
            messages.WARNING,
        )
        return
    model_admin.message_user(request, describe(made), LEVELS[made.status])


@codes(Refund, "out_refund_no")
@local_times(Refund, "sent_at", "success_time", "queried_at", "abnormal_at", "created_at", "updated_at")
class RefundAdmin(StatusColumns, LargeTableAdmin):
    list_display = (
        "out_refund_no_code",
        "deduction_link",
        "amount_yuan",
        "status_badge",
        "sent_at_local",
        "short_error",
    )  # when it succeeded, and the rest, on its page: the list fits a 1366 px laptop
    # No date hierarchy: its year links are a SELECT DISTINCT over every refund. The dates filter asks nothing.
    list_filter = ("status", "advance", "created_at")
    # Exact numbers, each through its index (large_tables.py): ours and WeChat Pay's, of the refund and its charge.
    search_numbers = (
        "out_refund_no",
        "refund_id",
        "sub_order__out_trade_no",
        "sub_order__transaction_id",
        "sub_order__deduction__combine_out_trade_no",
    )
    list_select_related = ("sub_order__deduction",)
    actions = ["settle", "advance_refund", "retry_abnormal"]
    fields = (
        "out_refund_no",
        "refund_id",
        "deduction_link",
        "sub_order",
        "amount_yuan",
        "reason",
        "status",
        "refund_status",
        "advance",
        "error_code",
        "error_display",
        "channel",
        "user_received_account",
        "sent_at_local",
        "queried_at_local",
        "success_time_local",
        "abnormal_at_local",
        "created_at_local",
        "updated_at_local",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["django_papay/admin.css"]}

    @transaction.non_atomic_requests
    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Outside ATOMIC_REQUESTS: the actions call WeChat Pay, and what they store must commit at once."""
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("deduction"), ordering="sub_order__deduction__combine_out_trade_no")
    def deduction_link(self, refund: Refund) -> str:
        deduction = refund.sub_order.deduction
        return code(deduction, reverse("admin:django_papay_deduction_change", args=[deduction.pk]))

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_yuan(self, refund: Refund) -> str:
        return yuan(refund.amount)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.action(
        description=gettext_lazy("Settle with WeChat Pay (query; send again with the same number)"),
        permissions=["refund"],
    )
    def settle(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        settled_each = dispatch.settle_refunds_each(list(queryset.order_by("pk")))
        if isinstance(settled_each, dispatch.Queued):
            self.message_user(
                request, _("%(count)d refunds queued to be settled.") % {"count": settled_each.count}, messages.SUCCESS
            )
            return
        for settled in settled_each:
            if settled.error is None:
                self.message_user(request, describe(settled.refund), LEVELS[settled.refund.status])
            else:
                self.message_user(
                    request,
                    _("Refund %(number)s: WeChat Pay could not tell — %(error)s")
                    % {"number": settled.refund, "error": settled.error},
                    messages.ERROR,
                )

    @admin.action(description=gettext_lazy("Send again as advanced by the platform (垫付)"), permissions=["refund"])
    def advance_refund(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        self._each(request, queryset, services.advance_refund)

    @admin.action(description=gettext_lazy("Retry abnormal refund"), permissions=["retry"])
    def retry_abnormal(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        self._each(request, queryset, services.retry_abnormal_refund)

    def _each(self, request: HttpRequest, queryset: QuerySet[Refund], call: Any) -> None:
        for refund in queryset.order_by("pk"):
            try:
                call(refund)
            except PapayError as exc:
                self.message_user(
                    request, _("Refund %(number)s: %(error)s") % {"number": refund, "error": exc}, messages.ERROR
                )
            else:
                self.message_user(request, describe(refund), LEVELS[refund.status])

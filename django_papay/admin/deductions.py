"""Deductions in the admin: what was charged, in yuan for people (fen in the data), and the calls staff may make.

A deduction is WeChat Pay's word once sent, so nobody adds, edits or deletes one here; staff charge a
contract (the contracts' ``deduct`` action), settle what is open, and reverse what never finished.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import dispatch, services
from ..exceptions import PapayError
from ..models import Contract, Deduction, SubOrder, new_trade_no, trade_no_validator
from .columns import local_times
from .confirmation import confirmation_page
from .queueing import DeductionQueueFilter, queue_charges, say_settles_queued


def yuan(fen: int | None) -> str:
    """``1500`` → ``¥15.00``: amounts are stored in fen, shown in yuan."""
    if fen is None:
        return "-"
    return f"¥{Decimal(fen) / 100:,.2f}"


class DeductForm(forms.Form):
    """One sub-order for each selected contract: who is paid, what for, how much (in yuan, to the fen).

    The page also carries each contract's ``combine_out_trade_no``, chosen when it is shown (hidden fields):
    the form posted again (a double click, a refresh, a proxy's retry) names the same charge, which
    ``deduct`` finds stored and does not send again.
    """

    sub_mchid = forms.RegexField(
        label=gettext_lazy("sub-merchant id"),
        regex=r"\A[0-9]{1,32}\Z",
        max_length=32,
        help_text=gettext_lazy("sub_mchid: the sub-merchant (二级商户) that is paid."),
    )
    description = forms.CharField(
        label=gettext_lazy("description"),
        max_length=127,
        help_text=gettext_lazy("Shown to the user in the payment record."),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("amount (yuan)"),
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text=gettext_lazy("In yuan, e.g. 15.00; sent to WeChat Pay in fen."),
    )

    def __init__(self, data: Any = None, *, contracts: Sequence[Contract] = ()) -> None:
        super().__init__(data)
        self.numbered = {contract.pk: f"combine_out_trade_no_{contract.pk}" for contract in contracts}
        for name in self.numbered.values():
            self.fields[name] = forms.CharField(widget=forms.HiddenInput, required=False, initial=new_trade_no())

    def clean(self) -> dict[str, Any]:
        numbers = [self.cleaned_data.get(name, "") for name in self.numbered.values()]
        try:
            for number in numbers:
                trade_no_validator(number)
        except ValidationError:
            raise ValidationError(TAMPERED) from None
        if len(set(numbers)) != len(numbers):
            raise ValidationError(TAMPERED)
        return self.cleaned_data

    def number(self, contract: Contract) -> str:
        """The ``combine_out_trade_no`` this page chose for ``contract``."""
        return self.cleaned_data[self.numbered[contract.pk]]

    def sub_orders(self) -> list[dict]:
        data = self.cleaned_data
        fen = int(data["amount"] * 100)  # exact: at most two decimal places
        return [{"sub_mchid": data["sub_mchid"], "description": data["description"], "amount": fen}]


TAMPERED = gettext_lazy(
    "This page's charge numbers are missing or not valid; nothing was charged. Go back to the contracts and "
    "choose the action again."
)


def deduct_action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Contract]):
    """The contracts' ``deduct`` action: a page that asks for the sub-order, then one charge per signed contract."""
    contracts = list(queryset.order_by("pk"))
    form = DeductForm(request.POST if "confirm" in request.POST else None, contracts=contracts)
    if form.is_bound and form.is_valid():
        numbers = {contract.pk: form.number(contract) for contract in contracts}
        if queue_charges(model_admin, request, contracts, form.sub_orders(), numbers):  # PAPAY["TASKS"]: a run
            return None
        for contract in contracts:
            if contract.status != Contract.Status.SIGNED:
                model_admin.message_user(
                    request,
                    _("Contract %(code)s is %(status)s: not charged.")
                    % {"code": contract, "status": contract.get_status_display()},
                    messages.WARNING,
                )
                continue
            _charge(model_admin, request, contract, form.sub_orders(), form.number(contract))
        return None
    signed = [c for c in contracts if c.status == Contract.Status.SIGNED]
    return confirmation_page(
        model_admin,
        request,
        action="deduct",
        form=form,
        ready=bool(signed),
        title=_("Charge contracts with WeChat Pay"),
        submit_label=_("Charge"),
        intro=_(
            "WeChat Pay will charge each signed contract below once, without a password; the user must know "
            "this payment happens. Contracts that are not signed are skipped."
        ),
        items=[
            {
                "object": c,
                "label": c.contract_display_account,
                "skipped": "" if c in signed else _("(not signed: will be skipped)"),
            }
            for c in contracts
        ],
    )


def _charge(
    model_admin: admin.ModelAdmin, request: HttpRequest, contract: Contract, sub_orders: list[dict], number: str
) -> None:
    posted_before = Deduction.objects.filter(combine_out_trade_no=number).exists()
    try:
        deduction = services.deduct(contract, sub_orders, combine_out_trade_no=number)
    except ImproperlyConfigured as exc:
        model_admin.message_user(request, _("WeChat Pay is not configured: %s") % exc, messages.ERROR)
        return
    except (ValidationError, PapayError) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        model_admin.message_user(
            request, _("Contract %(code)s: not charged — %(error)s") % {"code": contract, "error": text}, messages.ERROR
        )
        return
    if posted_before:  # the same page posted again: deduct found the charge and sent nothing
        model_admin.message_user(
            request,
            _("Already made from this page (posted again): not charged again. %(deduction)s")
            % {"deduction": _describe(deduction)},
            messages.WARNING,
        )
        return
    model_admin.message_user(request, _describe(deduction), _LEVELS[deduction.status])


_LEVELS: dict[str, int] = {
    Deduction.Status.SUCCEEDED: messages.SUCCESS,
    Deduction.Status.PROCESSING: messages.WARNING,
    Deduction.Status.CREATED: messages.WARNING,
    Deduction.Status.FAILED: messages.ERROR,
    Deduction.Status.REVERSED: messages.WARNING,
}


def _describe(deduction: Deduction) -> str:
    numbers = ", ".join(filter(None, deduction.sub_orders.values_list("transaction_id", flat=True)))
    text = _("Deduction %(number)s (contract %(code)s, %(total)s): %(status)s") % {
        "number": deduction,
        "code": deduction.contract,
        "total": yuan(deduction.total_amount),
        "status": deduction.get_status_display(),
    }
    if deduction.status == Deduction.Status.SUCCEEDED and numbers:
        text += " — " + _("transaction %(ids)s") % {"ids": numbers}
    elif deduction.status == Deduction.Status.PROCESSING:
        text += " — " + _("the outcome is not known yet; it will be settled by asking WeChat Pay (papay_settle)")
    if deduction.last_error and deduction.status != Deduction.Status.SUCCEEDED:
        text += f" ({deduction.last_error})"
    return text


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
class DeductionAdmin(admin.ModelAdmin):
    list_display = (
        "combine_out_trade_no",
        "contract_link",
        "total",
        "status_badge",
        "sent_at_local",
        "settled_at_local",
        "short_error",
    )
    list_filter = ("status", CorrectedFilter, DeductionQueueFilter, "sent_at", "created_at")
    search_fields = (
        "combine_out_trade_no",
        "sub_orders__out_trade_no",
        "sub_orders__transaction_id",
        "contract__out_contract_code",
        "contract__contract_id",
        "openid",
    )
    date_hierarchy = "created_at"
    list_select_related = ("contract",)
    actions = ["settle", "reverse"]
    inlines = [SubOrderInline]
    fields = (
        "combine_out_trade_no",
        "contract_link",
        "total",
        "status",
        "corrected_from",
        "last_error",
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
        return super().get_queryset(request).prefetch_related("sub_orders")

    # Sent deductions are WeChat Pay's word: they come from services.deduct, and are never edited or deleted.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("contract"), ordering="contract__out_contract_code")
    def contract_link(self, deduction: Deduction) -> str:
        url = reverse("admin:django_papay_contract_change", args=[deduction.contract_id])
        return format_html('<a href="{}">{}</a>', url, deduction.contract)

    @admin.display(description=gettext_lazy("total"))
    def total(self, deduction: Deduction) -> str:
        return yuan(deduction.total_amount)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, deduction: Deduction) -> str:
        badge = format_html(
            '<span class="papay-status papay-status-{}">{}</span>', deduction.status, deduction.get_status_display()
        )
        if not deduction.corrected_from:
            return badge
        was = _("was %(status)s") % {"status": deduction.get_corrected_from_display()}
        return format_html('{} <span class="papay-corrected">({})</span>', badge, was)

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, deduction: Deduction) -> str:
        text = deduction.last_error
        return text if len(text) <= 60 else text[:59] + "…"

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
                self.message_user(request, _describe(settled.deduction), _LEVELS[settled.deduction.status])
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
                    self.message_user(request, _describe(deduction), _LEVELS[deduction.status])
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

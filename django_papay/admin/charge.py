"""The contracts' ``deduct`` action: a page that asks for the sub-orders (1 to 50), then one charge per signed
contract.

The page chooses each contract's ``combine_out_trade_no`` when it is shown, so a second post of the same page
finds the charge stored and sends nothing (``services.deduct`` with the same number).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import services, wechatpay
from ..exceptions import PapayError, describe_error
from ..models import Contract, Deduction, new_trade_no, trade_no_validator
from .columns import yuan
from .confirmation import confirmation_page
from .outcomes import LEVELS, describe
from .queueing import queue_charges


class SubOrderForm(forms.Form):
    """One sub-order of the charge: who is paid, what for, how much (in yuan, to the fen)."""

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
        max_value=Decimal(wechatpay.MAX_SUB_ORDER_AMOUNT) / 100,
        max_digits=12,
        decimal_places=2,
        help_text=gettext_lazy("In yuan, e.g. 15.00; sent to WeChat Pay in fen."),
    )

    def sub_order(self) -> dict[str, Any]:
        data = self.cleaned_data
        fen = int(data["amount"] * 100)  # exact: at most two decimal places
        return {"sub_mchid": data["sub_mchid"], "description": data["description"], "amount": fen}


class BaseSubOrderFormSet(forms.BaseFormSet):
    """The charge's sub-orders (合单: one to several sub-merchants), 1 to WeChat Pay's 50."""

    def sub_orders(self) -> list[dict[str, Any]]:
        """The sub-orders given (a row left blank is no sub-order), once the formset is valid."""
        return [form.sub_order() for form in self.forms if form.cleaned_data]

    def total(self) -> Decimal | None:
        """The sum of the amounts given so far (valid ones), in yuan; None when there is none."""
        amounts = []
        for form in self.forms:
            field = form["amount"]
            try:
                amounts.append(form.fields["amount"].clean(field.value()))
            except ValidationError:
                continue
        return sum((amount for amount in amounts if amount is not None), Decimal(0)) if amounts else None


SubOrderFormSet = forms.formset_factory(
    SubOrderForm,
    formset=BaseSubOrderFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=wechatpay.MAX_SUB_ORDERS,
    validate_max=True,
    absolute_max=wechatpay.MAX_SUB_ORDERS,
)
SUB_ORDERS_PREFIX = "sub_orders"


class DeductForm(forms.Form):
    """The page's own fields: each selected contract's ``combine_out_trade_no``, chosen when it is shown (hidden
    fields). The form posted again (a double click, a refresh, a proxy's retry) names the same charges, which
    ``deduct`` finds stored and does not send again. The sub-orders are ``SubOrderFormSet``'s.
    """

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


TAMPERED = gettext_lazy(
    "This page's charge numbers are missing or not valid; nothing was charged. Go back to the contracts and "
    "choose the action again."
)


def deduct_action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Contract]):
    """The contracts' ``deduct`` action: a page that asks for the sub-orders, then one charge per signed contract."""
    contracts = list(queryset.order_by("pk"))
    data = request.POST if "confirm" in request.POST else None
    form = DeductForm(data, contracts=contracts)
    sub_orders = cast(BaseSubOrderFormSet, SubOrderFormSet(data, prefix=SUB_ORDERS_PREFIX))
    if form.is_bound and form.is_valid() and sub_orders.is_valid():
        numbers = {contract.pk: form.number(contract) for contract in contracts}
        charged = sub_orders.sub_orders()
        if queue_charges(model_admin, request, contracts, charged, numbers):  # PAPAY["TASKS"]: a run
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
            _charge(model_admin, request, contract, charged, form.number(contract))
        return None
    signed = [c for c in contracts if c.status == Contract.Status.SIGNED]
    return confirmation_page(
        model_admin,
        request,
        action="deduct",
        form=form,
        ready=bool(signed),
        formset=sub_orders,
        sub_orders_total=_yuan_or_dash(sub_orders.total()),
        title=_("Charge contracts with WeChat Pay"),
        submit_label=_("Charge"),
        intro=_(
            "WeChat Pay will charge each signed contract below once, without a password, for the sub-orders you "
            "give (one to %(max)d sub-merchants, 合单); the user must know this payment happens. Contracts that "
            "are not signed are skipped."
        )
        % {"max": wechatpay.MAX_SUB_ORDERS},
        items=[
            {
                "object": c,
                "label": c.contract_display_account,
                "skipped": "" if c in signed else _("(not signed: will be skipped)"),
            }
            for c in contracts
        ],
    )


def _yuan_or_dash(total: Decimal | None) -> str:
    return "-" if total is None else yuan(int(total * 100))


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
        model_admin.message_user(
            request,
            _("Contract %(code)s: not charged — %(error)s") % {"code": contract, "error": describe_error(exc)},
            messages.ERROR,
        )
        return
    if posted_before:  # the same page posted again: deduct found the charge and sent nothing
        model_admin.message_user(
            request,
            _("Already made from this page (posted again): not charged again. %(deduction)s")
            % {"deduction": describe(deduction)},
            messages.WARNING,
        )
        return
    model_admin.message_user(request, describe(deduction), LEVELS[deduction.status])

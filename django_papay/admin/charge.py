"""The contracts' ``deduct`` action: a page that asks for the sub-order, then one charge per signed contract.

The page chooses each contract's ``combine_out_trade_no`` when it is shown, so a second post of the same page
finds the charge stored and sends nothing (``services.deduct`` with the same number).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import services
from ..exceptions import PapayError, describe_error
from ..models import Contract, Deduction, new_trade_no, trade_no_validator
from .confirmation import confirmation_page
from .outcomes import LEVELS, describe
from .queueing import queue_charges


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

"""The admin with ``PAPAY["TASKS"]``: what staff are told when the bulk actions enqueue (``dispatch`` decides),
the charge action's billing run, and the filters that show what is queued or in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import dispatch, services
from ..display import local_time
from ..exceptions import describe_error
from ..models import Contract, Deduction

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def say_contracts_queued(model_admin: admin.ModelAdmin, request: HttpRequest, queued: dispatch.Queued) -> None:
    """Tell staff how many contracts the workers will call WeChat Pay about."""
    model_admin.message_user(
        request,
        ngettext(
            "%(count)d contract queued; the workers will call WeChat Pay (filter: queued).",
            "%(count)d contracts queued; the workers will call WeChat Pay (filter: queued).",
            queued.count,
        )
        % {"count": queued.count},
        messages.SUCCESS,
    )


def queue_charges(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    contracts: list[Contract],
    sub_orders: list[dict],
    numbers: Mapping[int, str],
) -> bool:
    """With TASKS, charge the signed contracts as one billing run (stored now, sent by the workers).

    ``numbers`` are the page's ``combine_out_trade_no`` per contract pk: posted again, the charges are found
    stored and none is queued again. False without TASKS: the action charges each contract here.
    """
    if not dispatch.enqueues():
        return False
    signed = []
    for contract in contracts:
        if contract.status == Contract.Status.SIGNED:
            signed.append(services.Charge(contract, sub_orders, combine_out_trade_no=numbers[contract.pk]))
            continue
        model_admin.message_user(
            request,
            _("Contract %(code)s is %(status)s: not charged.")
            % {"code": contract, "status": contract.get_status_display()},
            messages.WARNING,
        )
    label = _("Charged by %(user)s in the admin, %(time)s") % {
        "user": request.user.get_username(),
        "time": local_time(timezone.now()),
    }
    planned = dispatch.deduct_many(signed, label=label)
    for charge, error in planned.refused:
        text = describe_error(error)
        model_admin.message_user(
            request,
            _("Contract %(code)s: not charged — %(error)s") % {"code": charge.contract, "error": text},
            messages.ERROR,
        )
    count = planned.run.deductions.count()
    model_admin.message_user(
        request,
        ngettext(
            "%(run)s: %(count)d deduction queued; follow it under billing runs.",
            "%(run)s: %(count)d deductions queued; follow it under billing runs.",
            count,
        )
        % {"run": planned.run, "count": count},
        messages.SUCCESS,
    )
    return True


def say_settles_queued(model_admin: admin.ModelAdmin, request: HttpRequest, queued: dispatch.Queued) -> None:
    """Tell staff how many processing deductions the workers will settle."""
    model_admin.message_user(
        request,
        ngettext(
            "%(count)d processing deduction queued to be settled.",
            "%(count)d processing deductions queued to be settled.",
            queued.count,
        )
        % {"count": queued.count},
        messages.SUCCESS,
    )


def _tasks_on() -> bool:
    """Whether the queue filters mean anything: without TASKS nothing is queued (and a filter with no choices
    is not shown)."""
    try:
        return dispatch.enqueues()
    except ImproperlyConfigured:  # said by the system checks; the list still shows
        return False


class ContractQueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("tasks")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("queued", gettext_lazy("queued"))] if _tasks_on() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contract]) -> QuerySet[Contract]:
        if self.value() == "queued":
            return queryset.filter(queued_at__isnull=False)
        return queryset


class DeductionQueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("tasks")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        in_flight = ("in_flight", gettext_lazy("in flight"))  # processing: sent by a task or here alike
        return [("queued", gettext_lazy("queued")), in_flight] if _tasks_on() else [in_flight]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> QuerySet[Deduction]:
        if self.value() == "queued":  # stored, a send task enqueued, not claimed yet
            return queryset.filter(status=Deduction.Status.CREATED, queued_at__isnull=False)
        if self.value() == "in_flight":  # sent, outcome not known or not final yet
            return queryset.filter(status=Deduction.Status.PROCESSING)
        return queryset

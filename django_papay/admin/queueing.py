"""The admin with ``PAPAY["TASKS"]``: bulk actions enqueue one task per row and say how many, and filters
show what is queued or in flight. Without TASKS nothing here runs, and the actions run in the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import conf, services
from ..models import Contract, Deduction
from ..services.operations import Operation

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def enqueue_contracts(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Contract], operation: Operation
) -> bool:
    """With TASKS, enqueue ``operation`` (pre-sign or query) for each contract and say so; False: run it here."""
    if not conf.tasks_enabled():
        return False
    from .. import tasks

    presign_channels = {id(services.PRESIGN): "app", id(services.PRESIGN_MINI_PROGRAM): "mini_program"}
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    if id(operation) in presign_channels:
        count = tasks.enqueue_contracts(tasks.presign_contract, ids, channel=presign_channels[id(operation)])
    elif operation is services.QUERY:
        count = tasks.enqueue_contracts(tasks.query_contract, ids)
    else:
        return False  # terminate asks for its remark first and runs in the request
    model_admin.message_user(
        request,
        ngettext(
            "%(count)d contract queued; the workers will call WeChat Pay (filter: queued).",
            "%(count)d contracts queued; the workers will call WeChat Pay (filter: queued).",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )
    return True


def queue_charges(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    contracts: list[Contract],
    sub_orders: list[dict],
    numbers: Mapping[int, str],
) -> bool:
    """With TASKS, charge the signed contracts as one billing run (stored now, sent by the workers).

    ``numbers`` are the page's ``combine_out_trade_no`` per contract pk: posted again, the charges are found
    stored and none is queued again.
    """
    if not conf.tasks_enabled():
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
    planned = services.deduct_many(signed, label=_("admin, %(user)s") % {"user": request.user.get_username()})
    for charge, error in planned.refused:
        text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
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


def enqueue_settles(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Deduction]) -> bool:
    """With TASKS, enqueue a settle for each processing deduction selected and say so; False: settle here."""
    if not conf.tasks_enabled():
        return False
    from .. import tasks

    ids = list(queryset.filter(status=Deduction.Status.PROCESSING).order_by("pk").values_list("pk", flat=True))
    count = tasks.enqueue_deductions(tasks.settle_deduction, ids)
    model_admin.message_user(
        request,
        ngettext(
            "%(count)d processing deduction queued to be settled.",
            "%(count)d processing deductions queued to be settled.",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )
    return True


class ContractQueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("tasks")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("queued", gettext_lazy("queued"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contract]) -> QuerySet[Contract]:
        if self.value() == "queued":
            return queryset.filter(queued_at__isnull=False)
        return queryset


class DeductionQueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("tasks")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("queued", gettext_lazy("queued")), ("in_flight", gettext_lazy("in flight"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> QuerySet[Deduction]:
        if self.value() == "queued":  # stored, a send task enqueued, not claimed yet
            return queryset.filter(status=Deduction.Status.CREATED, queued_at__isnull=False)
        if self.value() == "in_flight":  # sent, outcome not known or not final yet
            return queryset.filter(status=Deduction.Status.PROCESSING)
        return queryset

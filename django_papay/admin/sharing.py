"""Profit sharing in the admin: frozen / shared / finished at a glance, the shares and their receivers on each
deduction's sub-orders, and the actions "Share and finish now" and "Finish (unfreeze all)".

The actions are the deductions' (``SharingActions``, mixed into ``DeductionAdmin``), each behind its own
permission (``share_profit``, ``finish_sharing``); they go through ``dispatch`` like papay_share. A share is
WeChat Pay's word once sent: ``ProfitShareAdmin`` only shows it, its receivers and its returns.
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import dispatch
from ..exceptions import PapayError, describe_error
from ..models import Deduction, ProfitShare, ShareReceiver, ShareReturn, SubOrder
from ..services.sharing import finish_sharing
from .columns import ReadOnlyMixin, StatusColumns, local_times, yuan


def sharing_state(sub_order: SubOrder) -> str:
    """ "frozen", "shared" or "finished" for a paid sub-order charged with profit_sharing; "" otherwise."""
    if not sub_order.profit_sharing or not sub_order.transaction_id:
        return ""
    shares = list(sub_order.shares.all())  # prefetched by the deductions' changelist
    if any(s.finish and s.status == ProfitShare.Status.FINISHED for s in shares):
        return "finished"
    if any(s.kind == ProfitShare.Kind.SHARE and s.status != ProfitShare.Status.FAILED for s in shares):
        return "shared"
    return "frozen"


STATE_LABELS = {
    "frozen": gettext_lazy("frozen"),
    "shared": gettext_lazy("shared"),
    "finished": gettext_lazy("finished"),
}


def state_badge(state: str) -> SafeString:
    return format_html('<span class="papay-status papay-sharing-{}">{}</span>', state, STATE_LABELS[state])


def describe_shares(sub_order: SubOrder) -> SafeString:
    """Each share of ``sub_order`` with its receivers, one line each, for the sub-orders' inline."""
    lines = []
    for share in sub_order.shares.all():
        receivers = "; ".join(
            f"{r.account} {yuan(r.amount)} {r.result or '-'}{f' ({r.fail_reason})' if r.fail_reason else ''}"
            for r in share.receivers.all()
        )
        lines.append((share.get_kind_display(), share.out_order_no, share.get_status_display(), receivers or "-"))
    return format_html_join("", "<div>{} {} · {} · {}</div>", lines) if lines else SafeString("-")


class SharingActions:
    """The deductions' sharing column and actions, each action behind its own permission."""

    @admin.display(description=gettext_lazy("profit sharing"))
    def sharing_badge(self, deduction: Deduction) -> SafeString:
        states = sorted({state for state in map(sharing_state, deduction.sub_orders.all()) if state})
        return format_html_join(" ", "{}", ((state_badge(state),) for state in states)) if states else SafeString("")

    def has_share_profit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.share_profit")

    def has_finish_sharing_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.finish_sharing")

    @admin.action(description=gettext_lazy("Share and finish now (分账, then 完结分账)"), permissions=["share_profit"])
    def share_now(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> None:
        sub_orders = list(_frozen(queryset))
        if not sub_orders:
            self._say(request, _("No sub-order of these deductions is frozen for profit sharing."), messages.WARNING)
            return
        results = dispatch.share_each(sub_orders)
        if isinstance(results, dispatch.Queued):
            self._say(request, _("%(count)d sub-orders queued to be shared.") % {"count": results.count}, messages.INFO)
            return
        for result in results:
            if result.share is not None:
                self._say(request, _describe(result.sub_order, result.share), _level(result.share))
            else:
                self._say(
                    request,
                    _("Sub-order %(number)s: not shared — %(error)s")
                    % {"number": result.sub_order, "error": describe_error(result.error or Exception())},
                    messages.ERROR,
                )

    @admin.action(description=gettext_lazy("Finish (unfreeze all) — 完结分账"), permissions=["finish_sharing"])
    def finish_now(self, request: HttpRequest, queryset: QuerySet[Deduction]) -> None:
        sub_orders = list(_frozen(queryset))
        if not sub_orders:
            self._say(request, _("No sub-order of these deductions is frozen for profit sharing."), messages.WARNING)
            return
        for sub_order in sub_orders:
            try:
                finished = finish_sharing(sub_order)
            except PapayError as exc:
                self._say(
                    request,
                    _("Sub-order %(number)s: not finished — %(error)s") % {"number": sub_order, "error": exc},
                    messages.ERROR,
                )
            else:
                self._say(request, _describe(sub_order, finished), _level(finished))

    def _say(self, request: HttpRequest, text: str, level: int) -> None:
        cast(admin.ModelAdmin, self).message_user(request, text, level)  # mixed into a ModelAdmin


def _frozen(queryset: QuerySet[Deduction]) -> QuerySet[SubOrder]:
    return (
        SubOrder.objects.filter(
            deduction__in=queryset, profit_sharing=True, deduction__status=Deduction.Status.SUCCEEDED
        )
        .exclude(transaction_id="")
        .select_related("deduction")
        .order_by("pk")
    )


def _describe(sub_order: SubOrder, share: ProfitShare) -> str:
    return _("Sub-order %(number)s: %(kind)s %(share)s is %(status)s%(note)s") % {
        "number": sub_order,
        "kind": share.get_kind_display(),
        "share": share.out_order_no,
        "status": share.get_status_display(),
        "note": f" — {share.error_display()}" if share.last_error else "",
    }


def _level(share: ProfitShare) -> int:
    return {
        ProfitShare.Status.FINISHED: messages.SUCCESS,
        ProfitShare.Status.FAILED: messages.ERROR,
    }.get(ProfitShare.Status(share.status), messages.WARNING)


class ShareReceiverInline(admin.TabularInline):
    model = ShareReceiver
    fields = ("type", "account", "amount_yuan", "description", "result", "fail_reason", "detail_id", "finish_time")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=gettext_lazy("amount"))
    def amount_yuan(self, receiver: ShareReceiver) -> str:
        return yuan(receiver.amount)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ShareReturnInline(admin.TabularInline):
    model = ShareReturn
    fields = ("out_return_no", "return_mchid", "amount", "result", "return_id", "error_display")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@local_times(ProfitShare, "sent_at", "settled_at", "created_at")
class ProfitShareAdmin(ReadOnlyMixin, StatusColumns, admin.ModelAdmin):
    """Shares come from ``services.sharing``; read-only here."""

    list_display = ("out_order_no", "sub_order", "kind", "status_badge", "sent_at_local", "short_error")
    list_filter = ("kind", "status")
    fields = (
        "out_order_no",
        "sub_order",
        "kind",
        "status",
        "finish",
        "order_id",
        "wechatpay_status",
        "description",
        "error_display",
        "sent_at_local",
        "settled_at_local",
        "created_at_local",
    )
    readonly_fields = fields
    inlines = [ShareReceiverInline, ShareReturnInline]

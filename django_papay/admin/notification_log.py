"""The notification log in the admin: WeChat Pay's word, read-only, with ``reprocess`` for failed rows."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..exceptions import InvalidNotification, NotReprocessable
from ..models import Notification
from ..services import reprocess_notification
from ..services.notifications import FAMILIES
from .columns import ReadOnlyMixin, code, codes, local_times
from .large_tables import LargeTableAdmin


class EventFamilyFilter(admin.SimpleListFilter):
    """Each family of events the notify view knows (``ECOMMERCE_ENTRUST`` …): no ``SELECT DISTINCT`` over the log."""

    title = gettext_lazy("event type")
    parameter_name = "family"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(family, f"{family}.*") for family in sorted(FAMILIES)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        family = self.value()
        return queryset.filter(event_type__startswith=f"{family}.") if family else queryset


@local_times(Notification, "received_at")
class NotificationInline(ReadOnlyMixin, admin.TabularInline):
    model = Notification
    fields = ("received_at_local", "event_type", "result", "verified", "processed", "note", "error")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    ordering = ("-received_at", "-pk")
    verbose_name_plural = gettext_lazy("notifications from WeChat Pay")


@local_times(Notification, "received_at", "processed_at")
@codes(Notification, "notification_id")
class NotificationAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = (
        "received_at_local",
        "event_type_shown",
        "result",
        "verified",
        "processed",
        "contract_link",
        "notification_id_code",
    )
    list_filter = (EventFamilyFilter, "verified", "processed", "result", "received_at")
    # Exact numbers through an index (large_tables.py): a notification's id once verified and processed (the
    # partial index of the duplicate check), or its contract's code. Rejected deliveries: by time and result.
    search_numbers = ("notification_id", "contract__out_contract_code")
    list_select_related = ("contract",)
    actions = ["reprocess"]
    fields = (
        "received_at_local",
        "remote_addr",
        "notification_id",
        "event_type",
        "verified",
        "processed",
        "processed_at_local",
        "result",
        "error",
        "note",
        "contract_link",
        "refund_link",
        "resource_shown",
        "headers_shown",
        "body_shown",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["django_papay/admin.css"]}

    # The delivery as it came, readable: JSON indented, long lines wrapped instead of widening the page.
    @admin.display(description=gettext_lazy("decrypted resource"))
    def resource_shown(self, notification: Notification) -> str:
        return _pre(notification.resource)

    @admin.display(description=gettext_lazy("headers"))
    def headers_shown(self, notification: Notification) -> str:
        return _pre(notification.headers)

    @admin.display(description=gettext_lazy("raw body"))
    def body_shown(self, notification: Notification) -> str:
        # As it came (the bytes WeChat Pay signed), wrapped; its sealed resource is above, decrypted.
        return format_html('<pre class="papay-pre">{}</pre>', notification.body) if notification.body else "-"

    @admin.display(description=gettext_lazy("refund"))
    def refund_link(self, notification: Notification) -> str:
        if notification.refund_id is None:
            return "-"
        url = reverse("admin:django_papay_refund_change", args=[notification.refund_id])
        return format_html('<a href="{}">{}</a>', url, notification.refund)

    @admin.display(description=gettext_lazy("contract"), ordering="contract__out_contract_code")
    @admin.display(description=gettext_lazy("event type"), ordering="event_type")
    def event_type_shown(self, notification: Notification) -> str:
        """``ECOMMERCE_ENTRUST.TERMINATE``, which may wrap after its dot but never inside a word."""
        words = notification.event_type.split(".")
        shown = format_html_join(mark_safe(".<wbr>"), "{}", ((word,) for word in words))
        return format_html('<span class="papay-code" title="{}">{}</span>', notification.event_type, shown)

    def contract_link(self, notification: Notification) -> str:
        if notification.contract is None:
            return "-"
        url = reverse("admin:django_papay_contract_change", args=[notification.contract_id])
        return code(notification.contract, url)

    def numbered(self, path: str, term: str) -> QuerySet[Notification]:
        found = super().numbered(path, term)
        # The duplicate check's partial index holds only verified, processed rows (a forger's flood adds nothing).
        return found.filter(verified=True, processed=True) if path == "notification_id" else found

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.reprocess_notification")

    @admin.action(description=gettext_lazy("Reprocess failed notifications"), permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        for delivery in queryset.order_by("received_at", "pk"):
            label = delivery.notification_id or f"#{delivery.pk}"
            try:
                reprocess_notification(delivery)
            except (NotReprocessable, InvalidNotification) as exc:
                self.message_user(
                    request, _("Notification %(id)s: %(result)s") % {"id": label, "result": exc}, messages.WARNING
                )
            except Exception as exc:  # a receiver failed again: the row says why
                text = _("Notification %(id)s: failed again — %(error)s") % {"id": label, "error": exc}
                self.message_user(request, text, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Notification %(id)s: %(result)s") % {"id": label, "result": delivery.get_result_display()},
                    messages.SUCCESS,
                )


def _pre(value: Any) -> str:
    if value in (None, {}, [], ""):
        return "-"
    return format_html('<pre class="papay-pre">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))

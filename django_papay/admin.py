"""The staff's view of contracts: read WeChat Pay's state, run pre-sign, see what failed."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import services
from .exceptions import ContractStateError, WeChatPayError
from .models import Contract, Notification

# Set by WeChat Pay's answers and notifications; staff read them but never type them.
WECHATPAY_FIELDS = (
    "status", "last_error", "pre_entrustweb_id", "presigned_at", "presign_expires",
    "mchid", "contract_id", "openid", "signed_at", "contract_expired_at", "terminated_at", "termination_mode",
    "created_at", "updated_at",
)
# What the pre-sign sent; frozen once WeChat Pay knows the contract.
REQUEST_FIELDS = ("out_contract_code", "plan_id", "appid", "contract_display_account", "attach")


class ReadOnlyMixin:
    """The audit trail is WeChat Pay's word: nobody adds, edits or deletes it."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class NotificationInline(ReadOnlyMixin, admin.TabularInline):
    model = Notification
    fields = ("received_at", "event_type", "result", "verified", "processed", "note", "error")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    ordering = ("-received_at", "-pk")
    verbose_name_plural = gettext_lazy("notifications from WeChat Pay")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("received_at", "event_type", "result", "verified", "processed", "contract_link", "notification_id")
    list_filter = ("event_type", "verified", "processed", "result", "received_at")
    search_fields = ("notification_id", "contract__out_contract_code", "remote_addr")
    date_hierarchy = "received_at"
    list_select_related = ("contract",)
    fields = (
        "received_at", "remote_addr", "notification_id", "event_type", "verified", "processed", "processed_at",
        "result", "error", "note", "contract_link", "resource", "headers", "body",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("contract"), ordering="contract__out_contract_code")
    def contract_link(self, notification: Notification) -> str:
        if notification.contract is None:
            return "-"
        url = reverse("admin:django_papay_contract_change", args=[notification.contract_id])
        return format_html('<a href="{}">{}</a>', url, notification.contract)


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = (
        "out_contract_code", "contract_display_account", "plan_id", "status_badge", "presign_expires", "short_error",
        "updated_at",
    )
    list_filter = ("status", "plan_id", "appid", "created_at")
    search_fields = ("out_contract_code", "contract_id", "openid", "contract_display_account", "pre_entrustweb_id")
    date_hierarchy = "created_at"
    raw_id_fields = ("user",)
    actions = ["presign"]
    inlines = [NotificationInline]
    fieldsets = (
        (None, {"fields": (*REQUEST_FIELDS, "user")}),
        (gettext_lazy("WeChat Pay"), {"fields": WECHATPAY_FIELDS}),
    )

    class Media:
        css = {"all": ["django_papay/admin.css"]}

    def get_readonly_fields(self, request: HttpRequest, obj: Contract | None = None) -> tuple[str, ...]:
        if obj is not None and obj.status not in (Contract.Status.CREATED, Contract.Status.FAILED):
            return WECHATPAY_FIELDS + REQUEST_FIELDS
        return WECHATPAY_FIELDS

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, contract: Contract) -> str:
        return format_html(
            '<span class="papay-status papay-status-{}">{}</span>', contract.status, contract.get_status_display()
        )

    @admin.display(description=gettext_lazy("pre-sign session expires"))
    def presign_expires(self, contract: Contract) -> str:
        expires_at = contract.presign_expires_at
        if expires_at is None:
            return "-"
        if expires_at <= timezone.now():
            return _("expired %(time)s") % {"time": _local(expires_at)}
        return _local(expires_at)

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, contract: Contract) -> str:
        text = contract.last_error
        return text if len(text) <= 60 else text[:59] + "…"

    def has_presign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.presign_contract")

    @admin.action(description=gettext_lazy("Pre-sign with WeChat Pay (APP)"), permissions=["presign"])
    def presign(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        """One message per contract: its pre_entrustweb_id, or why it was not pre-signed."""
        for contract in queryset:
            code = contract.out_contract_code
            try:
                services.presign(contract)
            except ImproperlyConfigured as exc:
                self.message_user(request, _("WeChat Pay is not configured: %s") % exc, messages.ERROR)
                return
            except ValidationError as exc:
                text = "; ".join(exc.messages)
                self.message_user(request, _("%(code)s: not sent — %(error)s") % {"code": code, "error": text},
                                  messages.ERROR)
            except ContractStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            except WeChatPayError as exc:
                self.message_user(request, _("%(code)s: WeChat Pay refused the pre-sign — %(error)s")
                                  % {"code": code, "error": exc}, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(code)s: pre-signed, pre_entrustweb_id %(id)s (valid until %(expires)s)")
                    % {"code": code, "id": contract.pre_entrustweb_id, "expires": _local(contract.presign_expires_at)},
                    messages.SUCCESS,
                )


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")

"""The staff's view of contracts: WeChat Pay's state at a glance, and the calls staff may make."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import conf, dispatch, services
from ..display import ago, local_time, time_left
from ..exceptions import ContractStateError, describe_error
from ..models import Contract, Deduction, SubOrder
from ..services import Outcome
from .charge import deduct_action
from .columns import StatusColumns, codes, local_times, moment
from .confirmation import confirmation_page
from .large_tables import ConfiguredValuesFilter, LargeTableAdmin
from .notification_log import NotificationInline
from .queueing import ContractQueueFilter, say_contracts_queued

# Set by WeChat Pay's answers and notifications; staff read them but never type them.
WECHATPAY_FIELDS = (
    "status",
    "error_display",
    "pre_entrustweb_id",
    "presign_channel",
    "presigned_at_local",
    "presign_expires",
    "launch_parameters",
    "mchid",
    "contract_id",
    "openid",
    "signed_at_local",
    "contract_expired_at_local",
    "sign_attach",
    "terminated_at_local",
    "termination_mode_shown",
    "termination_remark",
    "terminate_attach",
    "queried_at_local",
    "created_at_local",
    "updated_at_local",
)
# What the pre-sign sent; frozen once WeChat Pay knows the contract.
REQUEST_FIELDS = ("out_contract_code", "plan_id", "appid", "contract_display_account", "attach")
EDITABLE_STATES = (Contract.Status.CREATED, Contract.Status.FAILED)
# WeChat Pay holds a session or a contract for these: the record stays (terminate a signed one instead).
UNDELETABLE_STATES = (Contract.Status.PRESIGNED, Contract.Status.SIGNED)


class TerminateForm(forms.Form):
    contract_termination_remark = forms.CharField(
        label=gettext_lazy("termination remark"),
        max_length=256,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Sent to WeChat Pay as contract_termination_remark (at most 256 characters)."),
    )


class PlanFilter(ConfiguredValuesFilter):
    """The plans of ``APP_PLAN_IDS`` (and one in the URL): choices from the settings, not from the table."""

    title = gettext_lazy("plan id")
    parameter_name = "plan_id"

    def values(self) -> list[int]:
        try:
            return sorted(conf.app_plan_ids())
        except ImproperlyConfigured:  # not set: the App's endpoints are off; filter by URL only
            return []


class AppIdFilter(ConfiguredValuesFilter):
    """The site's AppIDs (``APPID``, ``COMBINE_APPID``, ``EXTRA_APPIDS``)."""

    title = gettext_lazy("AppID")
    parameter_name = "appid"

    def values(self) -> list[str]:
        return sorted(conf.appids())


@local_times(
    Contract,
    "presigned_at",
    "signed_at",
    "contract_expired_at",
    "terminated_at",
    "queried_at",
    "created_at",
    "updated_at",
)
@codes(Contract, "out_contract_code", "contract_display_account")
class ContractAdmin(StatusColumns, LargeTableAdmin):
    list_display = (
        "out_contract_code_code",
        "contract_display_account_code",
        "plan_id",
        "status_badge",
        "presign_age",
        "presign_expires",
        "short_error",
    )
    list_filter = ("status", ContractQueueFilter, PlanFilter, AppIdFilter, "presign_channel", "created_at")
    # Exact numbers, each through its index (large_tables.py): a million contracts are never scanned to search.
    search_numbers = ("out_contract_code", "contract_id", "openid", "pre_entrustweb_id")
    raw_id_fields = ("user",)
    actions = ["presign", "presign_mini_program", "query", "terminate", "deduct"]
    inlines = [NotificationInline]
    fieldsets = (
        (None, {"fields": (*REQUEST_FIELDS, "user")}),
        (gettext_lazy("WeChat Pay"), {"fields": WECHATPAY_FIELDS}),
    )

    class Media:
        css = {"all": ["django_papay/admin.css"]}

    @transaction.non_atomic_requests
    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Outside ATOMIC_REQUESTS: the actions (deduct above all) are posted here, and call WeChat Pay; what
        they store must commit before the call, or a failure later in the request would roll it back."""
        return super().changelist_view(request, extra_context)

    def get_fieldsets(self, request: HttpRequest, obj: Contract | None = None):
        if obj is None:  # a new contract: only what staff fill in; WeChat Pay fills in the rest later
            return ((None, {"fields": (*REQUEST_FIELDS, "user")}),)
        return self.fieldsets

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "plan_id":
            kwargs["min_value"] = 1  # one message for 0 and for negatives (the column alone allows 0)
        if db_field.name == "appid":
            kwargs["help_text"] = _("The App's AppID on the WeChat Open Platform; leave blank for the site's default.")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Contract | None = None) -> bool:
        if obj is not None and obj.status in UNDELETABLE_STATES:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Django's delete pages list what may not go: here also each pre-signed or signed contract, with why."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        refused = []
        for contract in objs:
            if contract.status in UNDELETABLE_STATES:
                refused.append(
                    _("Contract %(code)s is %(status)s: WeChat Pay knows it, so it is kept (terminate it instead).")
                    % {"code": contract.out_contract_code, "status": contract.get_status_display()}
                )
            numbers = list(contract.deductions.values_list("combine_out_trade_no", flat=True)[:5])
            if numbers:
                refused.append(
                    _("Contract %(code)s has deductions (%(numbers)s): a charge is WeChat Pay's record, so it is kept.")
                    % {"code": contract.out_contract_code, "numbers": ", ".join(numbers)}
                )
        if refused:  # say why it stays, rather than "no permission to delete contracts / deductions"
            kept = {str(model._meta.verbose_name) for model in (Contract, Deduction, SubOrder)}
            perms_needed = {name for name in perms_needed if str(name) not in kept}
        return deleted, counts, perms_needed, [*refused, *protected]

    def get_readonly_fields(self, request: HttpRequest, obj: Contract | None = None) -> tuple[str, ...]:
        if obj is not None and obj.status not in EDITABLE_STATES:
            return WECHATPAY_FIELDS + REQUEST_FIELDS
        return WECHATPAY_FIELDS

    # --- columns and read-only fields ---------------------------------------------------------

    @admin.display(description=gettext_lazy("termination mode"))
    def termination_mode_shown(self, contract: Contract) -> str:
        """WeChat Pay's code, and what it means in the reader's language."""
        if not contract.termination_mode:
            return "-"
        label = contract.termination_mode_label
        return f"{contract.termination_mode} ({label})" if label else contract.termination_mode

    @admin.display(description=gettext_lazy("pre-signed"), ordering="presigned_at")
    def presign_age(self, contract: Contract) -> str:
        if contract.presigned_at is None:
            return "-"
        return ago(contract.presigned_at)

    @admin.display(description=gettext_lazy("pre-sign session"))
    def presign_expires(self, contract: Contract) -> str:
        expires_at = contract.presign_expires_at
        if expires_at is None:
            return "-"
        if expires_at <= timezone.now():
            return _words(_("expired at %(time)s"), time=moment(expires_at, wrap=True))
        left = time_left(expires_at)
        return _words(_("%(left)s left (until %(time)s)"), left=left, time=moment(expires_at, wrap=True))

    @admin.display(description=gettext_lazy("launch parameters"))
    def launch_parameters(self, contract: Contract) -> str:
        """What the App (OpenSDK) or mini-program needs to open WeChat's signing page, ready to copy."""
        parameters = services.launch_parameters(contract)
        if parameters is None:
            return "-"
        if contract.presign_channel == Contract.Channel.MINI_PROGRAM:
            text = f"wx.navigateToMiniProgram({json.dumps(parameters)})"
        else:
            text = (
                "// Android: WXOpenBusinessWebview.Req, iOS: WXOpenBusinessWebViewReq\n"
                f"businessType = {parameters['businessType']}\nqueryInfo = {json.dumps(parameters['queryInfo'])}"
            )
        return format_html('<textarea class="papay-launch" readonly rows="4" cols="72">{}</textarea>', text)

    # --- actions --------------------------------------------------------------------------------

    def has_presign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.presign_contract")

    def has_presign_mini_program_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.presign_mini_program_contract")

    def has_query_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.query_contract")

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.terminate_contract")

    @admin.action(description=gettext_lazy("Pre-sign with WeChat Pay (App)"), permissions=["presign"])
    def presign(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._run(request, queryset, lambda cs: dispatch.presign_each(cs, Contract.Channel.APP), _presigned)

    @admin.action(
        description=gettext_lazy("Pre-sign with WeChat Pay (Mini Program)"), permissions=["presign_mini_program"]
    )
    def presign_mini_program(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._run(request, queryset, lambda cs: dispatch.presign_each(cs, Contract.Channel.MINI_PROGRAM), _presigned)

    @admin.action(description=gettext_lazy("Query the state at WeChat Pay"), permissions=["query"])
    def query(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._run(
            request,
            queryset,
            dispatch.query_each,
            lambda c: (
                _("Contract %(code)s: WeChat Pay says %(status)s")
                % {"code": c.out_contract_code, "status": c.get_status_display()}
            ),
        )

    @admin.action(description=gettext_lazy("Terminate at WeChat Pay…"), permissions=["terminate"])
    def terminate(self, request: HttpRequest, queryset: QuerySet[Contract]) -> TemplateResponse | None:
        """Two steps, like Django's delete: a page that asks for the remark, then the calls."""
        form = TerminateForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            operation = services.terminate_operation(form.cleaned_data["contract_termination_remark"])
            self._run(
                request,
                queryset,
                lambda cs: services.run_many(operation, cs),  # never queued: staff typed the remark for these
                lambda c: _("Contract %(code)s: terminated") % {"code": c.out_contract_code},
            )
            return None
        contracts = list(queryset)
        signed = sum(1 for c in contracts if c.status == Contract.Status.SIGNED)
        if signed:
            intro = ngettext(
                "WeChat Pay will end %(counter)s signed contract: the user can no longer be charged through it, "
                "and this cannot be undone.",
                "WeChat Pay will end %(counter)s signed contracts: the users can no longer be charged through "
                "them, and this cannot be undone.",
                signed,
            ) % {"counter": signed}
        else:
            intro = _(
                "None of the selected contracts is signed, so there is nothing to terminate: WeChat Pay ends "
                "signed contracts only."
            )
        skipped = _("(not signed: will be skipped)")
        return confirmation_page(
            self,
            request,
            action="terminate",
            form=form,
            ready=bool(signed),
            intro=intro,
            title=_("Terminate contracts at WeChat Pay"),
            submit_label=_("Terminate at WeChat Pay"),
            items=[
                {
                    "object": c,
                    "label": c.contract_display_account,
                    "skipped": "" if c.status == Contract.Status.SIGNED else skipped,
                }
                for c in contracts
            ],
        )

    def has_deduct_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_papay.deduct_contract")

    @admin.action(description=gettext_lazy("Charge with WeChat Pay (deduct)…"), permissions=["deduct"])
    def deduct(self, request: HttpRequest, queryset: QuerySet[Contract]) -> TemplateResponse | None:
        return deduct_action(self, request, queryset)

    def _run(
        self,
        request: HttpRequest,
        queryset: QuerySet[Contract],
        call: Callable[[list[Contract]], dispatch.Queued | list[Outcome]],
        success: Callable[[Contract], str],
    ) -> None:
        """``call`` the selection (a ``dispatch`` function, or run_many) and say what happened, one message each."""
        try:
            outcomes = call(list(queryset.order_by("pk")))
        except ImproperlyConfigured as exc:
            self.message_user(request, _("WeChat Pay is not configured: %s") % exc, messages.ERROR)
            return
        if isinstance(outcomes, dispatch.Queued):  # PAPAY["TASKS"]: the workers call WeChat Pay
            say_contracts_queued(self, request, outcomes)
            return
        for outcome in outcomes:
            code, error = outcome.contract.out_contract_code, outcome.error
            if error is None:
                self.message_user(request, success(outcome.contract), messages.SUCCESS)
            elif isinstance(error, ValidationError):
                text = describe_error(error)
                self.message_user(
                    request,
                    _("Contract %(code)s: not sent — %(error)s") % {"code": code, "error": text},
                    messages.ERROR,
                )
            elif isinstance(error, ContractStateError):
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(
                    request,
                    _("Contract %(code)s: WeChat Pay refused — %(error)s") % {"code": code, "error": error},
                    messages.ERROR,
                )


def _presigned(contract: Contract) -> str:
    return _("Contract %(code)s: pre-signed, pre_entrustweb_id %(id)s (valid until %(expires)s)") % {
        "code": contract.out_contract_code,
        "id": contract.pre_entrustweb_id,
        "expires": local_time(contract.presign_expires_at),
    }


def _words(text: str, **parts: str) -> SafeString:
    """A translated ``text`` with its ``%(name)s`` filled in, every piece escaped (a part may be HTML already)."""
    escaped = {name: conditional_escape(part) for name, part in parts.items()}
    return mark_safe(conditional_escape(text) % escaped)  # noqa: S308 — the text and every part are escaped

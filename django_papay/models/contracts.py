"""The merchant's record of each 合单代扣 contract."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import wechatpay
from ..wechatpay import PRESIGN_SESSION
from .stored_error import StoredError, last_error_message_field

out_contract_code_validator = RegexValidator(
    r"\A[0-9A-Za-z]{1,32}\Z",
    _("Use 1 to 32 digits and ASCII letters only (WeChat Pay's rule for out_contract_code)."),
)
appid_validator = RegexValidator(r"\A[0-9A-Za-z_]{1,32}\Z", _("Enter an AppID of ASCII letters and digits."))


# What WeChat Pay's contract_termination_mode codes mean, for people; the code itself is stored as sent.
TERMINATION_MODE_LABELS = {
    wechatpay.USER_TERMINATE: _("ended by the user in WeChat"),
    wechatpay.MCH_API_TERMINATE: _("ended by the merchant through the API"),
    wechatpay.WEPAY_WEB_TERMINATE: _("ended on WeChat Pay's web pages"),
    wechatpay.CUSTOMER_SERVICE_TERMINATE: _("ended by WeChat Pay's customer service"),
    wechatpay.SYSTEM_TERMINATE: _("ended by WeChat Pay's system"),
    "API": _("ended through the API"),
}


def new_out_contract_code() -> str:
    """32 hex characters: unique without coordination and within WeChat Pay's character rule."""
    return uuid.uuid4().hex


class Contract(StoredError, models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("created")
        PRESIGNED = "presigned", _("pre-signed")
        SIGNED = "signed", _("signed")
        TERMINATED = "terminated", _("terminated")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("pre-sign expired")

    class Channel(models.TextChoices):
        APP = "app", _("App")
        MINI_PROGRAM = "mini_program", _("Mini Program")

    out_contract_code = models.CharField(
        _("merchant contract code"),
        max_length=32,
        blank=True,
        validators=[out_contract_code_validator],
        help_text=_("out_contract_code: unique per merchant; left blank, one is generated."),
    )
    plan_id = models.PositiveBigIntegerField(
        _("plan id"), validators=[MinValueValidator(1)], help_text=_("The deduction template (委托代扣协议模板) id.")
    )
    contract_display_account = models.CharField(
        _("display account"), max_length=32, help_text=_("The account name WeChat shows the user while signing.")
    )
    appid = models.CharField(
        _("AppID"),
        max_length=32,
        blank=True,
        validators=[appid_validator],
        help_text=_('The App\'s AppID on the WeChat Open Platform; blank uses PAPAY["APPID"].'),
    )
    attach = models.CharField(
        _("attach"), max_length=255, blank=True, help_text=_("Free data WeChat Pay echoes back in its notification.")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="papay_contracts",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)

    # Filled in from WeChat Pay's answers and notifications.
    pre_entrustweb_id = models.CharField(_("pre-sign id"), max_length=128, blank=True)
    presigned_at = models.DateTimeField(_("pre-signed at"), null=True, blank=True)
    presign_channel = models.CharField(_("pre-sign channel"), max_length=16, choices=Channel.choices, blank=True)
    mchid = models.CharField(_("merchant id"), max_length=32, blank=True)
    contract_id = models.CharField(_("WeChat Pay contract id"), max_length=64, blank=True)
    openid = models.CharField(_("openid"), max_length=128, blank=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    contract_expired_at = models.DateTimeField(_("contract expires at"), null=True, blank=True)
    terminated_at = models.DateTimeField(_("terminated at"), null=True, blank=True)
    termination_mode = models.CharField(
        _("termination mode"),
        max_length=64,
        blank=True,
        help_text=_("contract_termination_mode, as WeChat Pay sent it."),
    )
    termination_remark = models.CharField(_("termination remark"), max_length=256, blank=True)
    # What WeChat Pay's notifications said, beside what we sent (attach above): a contract signed through another
    # channel has only these, and the two may differ.
    sign_attach = models.CharField(
        _("attach of the SIGN notification"),
        max_length=255,
        blank=True,
        help_text=_("attach as the signing notification carried it."),
    )
    terminate_attach = models.CharField(
        _("attach of the TERMINATE notification"),
        max_length=255,
        blank=True,
        help_text=_("attach as the termination notification carried it."),
    )
    queried_at = models.DateTimeField(
        _("last queried at"), null=True, blank=True, help_text=_("When WeChat Pay was last asked for this contract.")
    )
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    queued_at = models.DateTimeField(
        _("queued at"),
        null=True,
        blank=True,
        help_text=_("When a task about this contract was enqueued; cleared when it has run."),
    )

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ("-created_at", "-pk")
        permissions = [
            ("presign_contract", _("Can pre-sign contracts with WeChat Pay (App)")),
            ("presign_mini_program_contract", _("Can pre-sign contracts with WeChat Pay (Mini Program)")),
            ("query_contract", _("Can query contracts at WeChat Pay")),
            ("terminate_contract", _("Can terminate contracts at WeChat Pay")),
        ]
        # Only the indexes a query uses (each one is written on every non-HOT UPDATE of a contract): the code
        # the notify view locks by (a constraint, so no varchar_pattern_ops twin: nobody searches it with
        # LIKE); the status papay_sync and the expiry select by, with the admin's ordering after it (a status
        # filter reads one page, not every signed contract); the admin's ordering alone; the numbers its
        # search box looks up exactly (admin/large_tables.py); and papay_sync's oldest-first walk over the
        # pre-signed and expired ones, partial so the signed majority never enters it: read in presigned_at
        # order, it stops after a batch instead of sorting every due contract.
        constraints = [models.UniqueConstraint(fields=["out_contract_code"], name="papay_contract_code_unique")]
        indexes = [
            models.Index(fields=["status", "created_at", "id"], name="papay_contract_status_created"),
            models.Index(fields=["created_at", "id"], name="papay_contract_created"),
            models.Index(fields=["contract_id"], name="papay_contract_contract_id"),
            models.Index(fields=["openid"], name="papay_contract_openid"),
            models.Index(fields=["pre_entrustweb_id"], name="papay_contract_presign_id"),
            models.Index(
                fields=["presigned_at"],
                name="papay_contract_due_sync",
                condition=models.Q(status__in=["presigned", "expired"]),
            ),
        ]

    def __str__(self) -> str:
        return self.out_contract_code or str(_("new contract"))

    def save(self, *args, **kwargs) -> None:
        if not self.out_contract_code:
            self.out_contract_code = new_out_contract_code()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "out_contract_code"}
        super().save(*args, **kwargs)

    @property
    def presign_expires_at(self) -> datetime | None:
        """When the latest pre-sign session ends or ended (``None`` without one)."""
        if self.status not in (self.Status.PRESIGNED, self.Status.EXPIRED) or self.presigned_at is None:
            return None
        return self.presigned_at + PRESIGN_SESSION

    @property
    def termination_mode_label(self) -> str:
        """What ``termination_mode`` means, translated ("" for a code WeChat Pay has not documented)."""
        return str(TERMINATION_MODE_LABELS.get(self.termination_mode, ""))

    def presign_session_is_live(self, now: datetime | None = None) -> bool:
        expires_at = self.presign_expires_at
        return expires_at is not None and (now or timezone.now()) < expires_at

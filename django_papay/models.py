"""The merchant's record of each 合单代扣 contract."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .wechatpay import PRESIGN_SESSION

out_contract_code_validator = RegexValidator(
    r"\A[0-9A-Za-z]{1,32}\Z",
    _("Use 1 to 32 digits and ASCII letters only (WeChat Pay's rule for out_contract_code)."),
)
appid_validator = RegexValidator(r"\A[0-9A-Za-z_]{1,32}\Z", _("Enter an AppID of ASCII letters and digits."))


def new_out_contract_code() -> str:
    """32 hex characters: unique without coordination and within WeChat Pay's character rule."""
    return uuid.uuid4().hex


class Contract(models.Model):
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
        _("merchant contract code"), max_length=32, unique=True, blank=True,
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
        _("AppID"), max_length=32, blank=True, validators=[appid_validator],
        help_text=_('The App\'s AppID on the WeChat Open Platform; blank uses PAPAY["APPID"].'),
    )
    attach = models.CharField(
        _("attach"), max_length=255, blank=True, help_text=_("Free data WeChat Pay echoes back in its notification.")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="papay_contracts",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED,
                              db_index=True)

    # Filled in from WeChat Pay's answers and notifications.
    pre_entrustweb_id = models.CharField(_("pre-sign id"), max_length=128, blank=True)
    presigned_at = models.DateTimeField(_("pre-signed at"), null=True, blank=True)
    presign_channel = models.CharField(_("pre-sign channel"), max_length=16, choices=Channel.choices, blank=True)
    mchid = models.CharField(_("merchant id"), max_length=32, blank=True)
    contract_id = models.CharField(_("WeChat Pay contract id"), max_length=64, blank=True, db_index=True)
    openid = models.CharField(_("openid"), max_length=128, blank=True, db_index=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    contract_expired_at = models.DateTimeField(_("contract expires at"), null=True, blank=True)
    terminated_at = models.DateTimeField(_("terminated at"), null=True, blank=True)
    termination_mode = models.CharField(
        _("termination mode"), max_length=64, blank=True,
        help_text=_("contract_termination_mode, as WeChat Pay sent it."),
    )
    termination_remark = models.CharField(_("termination remark"), max_length=256, blank=True)
    queried_at = models.DateTimeField(
        _("last queried at"), null=True, blank=True, help_text=_("When WeChat Pay was last asked for this contract.")
    )
    last_error = models.TextField(_("last error"), blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

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

    def presign_session_is_live(self, now: datetime | None = None) -> bool:
        expires_at = self.presign_expires_at
        return expires_at is not None and (now or timezone.now()) < expires_at


def storable(value: Any) -> Any:
    """``value`` in a form every database stores, for the log of whatever arrived.

    PostgreSQL refuses NUL in text and jsonb, no UTF-8 database takes a lone surrogate (a JSON ``"\\ud800"``
    escape makes one), and jsonb refuses NaN and Infinity (``1e999`` parses to one): those are written out
    as text instead, in strings, dict keys and lists alike; everything else is returned as it is.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


class Notification(models.Model):
    """One delivery to the notify view, stored before it is trusted: the audit trail of every callback.

    Whatever a delivery carries can be stored: ``save`` passes every text and JSON field through ``storable``.
    """

    class Result(models.TextChoices):
        RECEIVED = "received", _("received")
        REJECTED = "rejected", _("rejected")
        APPLIED = "applied", _("applied")
        DUPLICATE = "duplicate", _("duplicate")
        IGNORED = "ignored", _("ignored")
        UNKNOWN_EVENT = "unknown_event", _("unknown event")
        FAILED = "failed", _("failed")

    # WeChat Pay's envelope ``id`` and ``event_type``, as parsed (trusted only when ``verified``).
    notification_id = models.CharField(_("notification id"), max_length=64, blank=True, db_index=True)
    event_type = models.CharField(_("event type"), max_length=64, blank=True, db_index=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    body = models.TextField(_("raw body"), blank=True)
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    verified = models.BooleanField(_("verified"), default=False)
    processed = models.BooleanField(_("processed"), default=False)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, default=Result.RECEIVED)
    error = models.TextField(_("error"), blank=True)
    note = models.TextField(_("note"), blank=True, help_text=_("Why a verified notification changed nothing."))
    resource = models.JSONField(_("decrypted resource"), null=True, blank=True)
    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="notifications",
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ("-received_at", "-pk")
        permissions = [("reprocess_notification", _("Can reprocess failed notifications"))]
        indexes = [models.Index(fields=["notification_id", "processed"], name="papay_notif_id_processed")]

    def __str__(self) -> str:
        label = self.event_type or str(_("unparsed delivery"))
        return f"{label} {self.notification_id}".strip()

    def save(self, *args, **kwargs) -> None:
        # Escaping can lengthen an id, so the columns' limit is applied after it.
        self.notification_id = storable(self.notification_id)[:64]
        self.event_type = storable(self.event_type)[:64]
        self.body, self.error, self.note = storable(self.body), storable(self.error), storable(self.note)
        self.headers, self.resource = storable(self.headers), storable(self.resource)
        super().save(*args, **kwargs)


class PlatformCertificate(models.Model):
    """A WeChat Pay platform certificate (平台证书) from ``GET /v3/certificates``, decrypted and checked.

    Stored in the database so every worker on every host verifies with the same set and only one of
    them downloads (see ``services.certificates``).
    """

    serial_no = models.CharField(_("serial number"), max_length=64, unique=True)
    pem = models.TextField(_("certificate (PEM)"))
    effective_time = models.DateTimeField(_("valid from"))
    expire_time = models.DateTimeField(_("valid until"), db_index=True)
    fetched_at = models.DateTimeField(_("downloaded at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=256, blank=True,
                              help_text=_("The URL it was downloaded from."))

    class Meta:
        verbose_name = _("platform certificate")
        verbose_name_plural = _("platform certificates")
        ordering = ("-effective_time", "-pk")

    def __str__(self) -> str:
        return self.serial_no


class CertificateRefresh(models.Model):
    """The single row (pk 1) that makes certificate downloads take turns across processes.

    A refresh claims it with one conditional UPDATE of ``attempted_at``: the row lock (PostgreSQL) or
    the database write lock (SQLite) holds every other refresher until the claimant's transaction ends,
    and the condition turns away whoever comes within the minimum interval (the rate limit).
    """

    attempted_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    succeeded_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("platform certificate refresh")
        verbose_name_plural = _("platform certificate refreshes")

    def __str__(self) -> str:
        return str(_("platform certificate refresh"))


# --- deductions (合单代扣 免密支付) ------------------------------------------------------------------

# combine_out_trade_no and out_trade_no: at most 32 of digits, letters and _-|*@ (WeChat Pay's rule).
trade_no_validator = RegexValidator(
    r"\A[0-9A-Za-z_\-|*@]{1,32}\Z",
    _("Use 1 to 32 digits, ASCII letters and _-|*@ only (WeChat Pay's rule for order numbers)."),
)


def new_trade_no() -> str:
    """32 hex characters: a fresh order number within WeChat Pay's rule, unique without coordination."""
    return uuid.uuid4().hex


class Deduction(models.Model):
    """One 合单 charge of a signed contract, and what WeChat Pay said about it.

    Stored, with its numbers, before it is sent; sent at most once (``status`` moves from CREATED to
    PROCESSING in one conditional UPDATE, the claim). PROCESSING means "sent, outcome not known or not
    final yet": money may have moved, so it is settled by asking WeChat Pay, never by sending again.
    """

    class Status(models.TextChoices):
        CREATED = "created", _("created")
        PROCESSING = "processing", _("processing")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        REVERSED = "reversed", _("reversed")

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.PROTECT, related_name="deductions"
    )
    combine_out_trade_no = models.CharField(
        _("combined order number"), max_length=32, unique=True, default=new_trade_no,
        validators=[trade_no_validator], help_text=_("combine_out_trade_no: the merchant's number of this charge."),
    )
    combine_appid = models.CharField(_("combined AppID"), max_length=32, validators=[appid_validator])
    combine_mchid = models.CharField(_("combined merchant id"), max_length=32, blank=True)
    risk_info = models.CharField(_("risk information"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED,
                              db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True,
                                      help_text=_("When the outcome became final."))
    queried_at = models.DateTimeField(_("last queried at"), null=True, blank=True)
    reverse_requested_at = models.DateTimeField(_("reverse requested at"), null=True, blank=True)
    openid = models.CharField(_("payer openid"), max_length=128, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deduction")
        verbose_name_plural = _("deductions")
        ordering = ("-created_at", "-pk")
        permissions = [
            ("deduct_contract", _("Can charge signed contracts (deduct)")),
            ("settle_deduction", _("Can settle deductions with WeChat Pay")),
            ("reverse_deduction", _("Can reverse deductions at WeChat Pay")),
        ]

    def __str__(self) -> str:
        return self.combine_out_trade_no

    @property
    def total_amount(self) -> int:
        """The sum of the sub-orders' amounts, in fen."""
        return sum(sub_order.amount for sub_order in self.sub_orders.all())


class SubOrder(models.Model):
    """One sub-merchant's part of a deduction, and WeChat Pay's result for it."""

    deduction = models.ForeignKey(
        Deduction, verbose_name=_("deduction"), on_delete=models.CASCADE, related_name="sub_orders"
    )
    mchid = models.CharField(_("merchant id"), max_length=32)
    sub_mchid = models.CharField(_("sub-merchant id"), max_length=32)
    sub_appid = models.CharField(_("sub-merchant AppID"), max_length=32, blank=True)
    out_trade_no = models.CharField(
        _("merchant order number"), max_length=32, unique=True, default=new_trade_no,
        validators=[trade_no_validator],
    )
    description = models.CharField(_("description"), max_length=127)
    attach = models.CharField(_("attach"), max_length=128, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (fen)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("currency"), max_length=8, default="CNY")
    profit_sharing = models.BooleanField(_("profit sharing"), null=True, blank=True)
    subsidy_amount = models.PositiveBigIntegerField(_("subsidy amount (fen)"), null=True, blank=True)

    # WeChat Pay's results, stored as they come (unknown trade states too).
    transaction_id = models.CharField(_("WeChat Pay transaction id"), max_length=64, blank=True)
    trade_state = models.CharField(_("trade state"), max_length=32, blank=True)
    bank_type = models.CharField(_("bank type"), max_length=32, blank=True)
    success_time = models.DateTimeField(_("paid at"), null=True, blank=True)
    payer_amount = models.BigIntegerField(_("payer amount (fen)"), null=True, blank=True)

    class Meta:
        verbose_name = _("sub-order")
        verbose_name_plural = _("sub-orders")
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.out_trade_no

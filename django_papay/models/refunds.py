"""Refunds (平台收付通 退款): money given back on one sub-order of a charge, exactly once."""

from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .deductions import SubOrder
from .stored_error import StoredError, last_error_message_field

refund_no_validator = RegexValidator(
    r"\A[0-9A-Za-z_\-|*@]{1,64}\Z",
    _("Use 1 to 64 digits, ASCII letters and _-|*@ only (WeChat Pay's rule for refund numbers)."),
)


def new_refund_no() -> str:
    """``R`` and 32 hex characters: a fresh refund number within WeChat Pay's rule, unique without coordination."""
    return "R" + uuid.uuid4().hex


class Refund(StoredError, models.Model):
    """One refund of one sub-order, and what WeChat Pay said about it.

    Stored, with its number, before it is sent. WeChat Pay refunds a number once however often it is sent
    ("同一退款单号多次请求只退一笔"), so a refund whose outcome is unknown is sent again with the same number,
    never a new one. PROCESSING means sent, and the result not known or not final yet (WeChat Pay's answer
    to the apply only means "accepted": the result comes by notification or query).
    """

    class Status(models.TextChoices):
        CREATED = "created", _("created")
        PROCESSING = "processing", _("processing")
        SUCCEEDED = "succeeded", pgettext_lazy("refund status", "succeeded")  # 退款成功, not a charge's 扣款成功
        ABNORMAL = "abnormal", _("abnormal")
        CLOSED = "closed", _("closed")
        FAILED = "failed", _("failed")

    sub_order = models.ForeignKey(
        SubOrder, verbose_name=_("sub-order"), on_delete=models.PROTECT, related_name="refunds"
    )
    out_refund_no = models.CharField(
        _("refund number"),
        max_length=64,
        unique=True,
        default=new_refund_no,
        validators=[refund_no_validator],
        help_text=_("out_refund_no: the merchant's number of this refund; sent again unchanged until it is final."),
    )
    refund_id = models.CharField(_("WeChat Pay refund id"), max_length=64, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (fen)"), validators=[MinValueValidator(1)])
    reason = models.CharField(_("reason"), max_length=80, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    refund_status = models.CharField(
        _("WeChat Pay's refund status"), max_length=32, blank=True, help_text=_("As WeChat Pay last reported it.")
    )
    advance = models.BooleanField(
        _("advanced by the platform (垫付)"),
        default=False,
        help_text=_("Sent as REFUND_SOURCE_PARTNER_ADVANCE: the platform pays it when the sub-merchant cannot."),
    )
    channel = models.CharField(_("refund channel"), max_length=32, blank=True)
    user_received_account = models.CharField(_("received by"), max_length=128, blank=True)
    success_time = models.DateTimeField(_("refunded at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    queried_at = models.DateTimeField(_("last queried at"), null=True, blank=True)
    abnormal_at = models.DateTimeField(
        _("abnormal since"), null=True, blank=True, help_text=_("When WeChat Pay first reported it ABNORMAL.")
    )
    error_code = models.CharField(_("last error code"), max_length=64, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ("-created_at", "-pk")
        permissions = [
            ("refund_deduction", _("Can refund charged sub-orders")),
            ("retry_refund", _("Can retry abnormal refunds")),
        ]
        # What the admin's list and the settling and reconciling read a platform's refunds by: the status
        # (papay_settle's open ones, a status filter's page) with the list's ordering after it; the ordering
        # alone; the rare refunds the platform advanced, in that order (a filter that would otherwise walk the
        # whole list for them); WeChat Pay's refund id, which a bill row and the search box look up; and the
        # succeeded ones by when they were sent, reconciliation's day (bill_match.refunded_on).
        indexes = [
            models.Index(fields=["status", "created_at", "id"], name="papay_refund_status_created"),
            models.Index(fields=["created_at", "id"], name="papay_refund_created"),
            models.Index(fields=["created_at", "id"], name="papay_refund_advanced", condition=models.Q(advance=True)),
            models.Index(fields=["refund_id"], name="papay_refund_refund_id"),
            models.Index(fields=["sent_at"], name="papay_refund_sent", condition=models.Q(status="succeeded")),
        ]

    def __str__(self) -> str:
        return self.out_refund_no


# What counts against a sub-order's amount: every refund but those WeChat Pay surely did not make.
NOT_REFUNDED = (Refund.Status.FAILED, Refund.Status.CLOSED)

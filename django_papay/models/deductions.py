"""Deductions (合单代扣 免密支付): each charge of a signed contract, and its sub-orders."""

from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .contracts import Contract, appid_validator
from .stored_error import StoredError, last_error_message_field

trade_no_validator = RegexValidator(
    r"\A[0-9A-Za-z_\-|*@]{1,32}\Z",
    _("Use 1 to 32 digits, ASCII letters and _-|*@ only (WeChat Pay's rule for order numbers)."),
)


def new_trade_no() -> str:
    """32 hex characters: a fresh order number within WeChat Pay's rule, unique without coordination."""
    return uuid.uuid4().hex


class Deduction(StoredError, models.Model):
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
        _("combined order number"),
        max_length=32,
        unique=True,
        default=new_trade_no,
        validators=[trade_no_validator],
        help_text=_("combine_out_trade_no: the merchant's number of this charge."),
    )
    combine_appid = models.CharField(_("combined AppID"), max_length=32, validators=[appid_validator])
    combine_mchid = models.CharField(_("combined merchant id"), max_length=32, blank=True)
    risk_info = models.CharField(_("risk information"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    reachable_until = models.DateTimeField(
        _("WeChat Pay may receive it until"),
        null=True,
        blank=True,
        help_text=_(
            "Until when the deduct call may still reach WeChat Pay: its timeouts when it was sent, the moment it "
            "ended once it did. WeChat Pay's one-minute window counts from here."
        ),
    )
    settled_at = models.DateTimeField(
        _("settled at"), null=True, blank=True, help_text=_("When the outcome became final.")
    )
    queried_at = models.DateTimeField(_("last queried at"), null=True, blank=True)
    reverse_requested_at = models.DateTimeField(_("reverse requested at"), null=True, blank=True)
    openid = models.CharField(_("payer openid"), max_length=128, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()
    corrected_from = models.CharField(
        _("corrected from"),
        max_length=16,
        choices=Status.choices,
        blank=True,
        help_text=_(
            "The final status this deduction had when a later answer signed by WeChat Pay showed the user was "
            "charged after all (see last error)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    billing_run = models.ForeignKey(
        "django_papay.BillingRun",
        verbose_name=_("billing run"),
        on_delete=models.PROTECT,
        related_name="deductions",
        null=True,
        blank=True,
        db_index=False,  # papay_deduction_run_status leads with it
    )
    queued_at = models.DateTimeField(
        _("queued at"), null=True, blank=True, help_text=_("When a task to send it was enqueued.")
    )

    class Meta:
        verbose_name = _("deduction")
        verbose_name_plural = _("deductions")
        ordering = ("-created_at", "-pk")
        permissions = [
            ("deduct_contract", _("Can charge signed contracts (deduct)")),
            ("settle_deduction", _("Can settle deductions with WeChat Pay")),
            ("reverse_deduction", _("Can reverse deductions at WeChat Pay")),
        ]
        # The admin's ordering (a page of the newest reads one index range, not a sort of every deduction).
        # And a run's rows by status: its fan-out (the CREATED ones) and its progress, counted per status. And
        # reconciliation's day of charges whose sub-orders have no success_time (bill_match.paid_on).
        indexes = [
            models.Index(fields=["created_at", "id"], name="papay_deduction_created"),
            models.Index(fields=["billing_run", "status"], name="papay_deduction_run_status"),
            models.Index(fields=["settled_at"], name="papay_deduction_settled", condition=models.Q(status="succeeded")),
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
        _("merchant order number"),
        max_length=32,
        unique=True,
        default=new_trade_no,
        validators=[trade_no_validator],
    )
    description = models.CharField(_("description"), max_length=127)
    attach = models.CharField(_("attach"), max_length=128, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (fen)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("currency"), max_length=8, default="CNY")
    profit_sharing = models.BooleanField(_("profit sharing"), null=True, blank=True)
    subsidy_amount = models.PositiveBigIntegerField(_("subsidy amount (fen)"), null=True, blank=True)
    # sub_risk_info: documented as an optional string with no length given; 255 as risk_info [I].
    sub_risk_info = models.CharField(_("sub-order risk information"), max_length=255, blank=True)

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
        # Reconciliation's two lookups: a bill row by WeChat Pay's number when ours is not in it (paid ones
        # only: the others have none), and the day's paid sub-orders.
        indexes = [
            models.Index(
                fields=["transaction_id"], name="papay_suborder_transaction", condition=~models.Q(transaction_id="")
            ),
            models.Index(fields=["success_time"], name="papay_suborder_paid_at"),
        ]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def refunded_amount(self) -> int:
        """Fen WeChat Pay has refunded on this sub-order (its SUCCEEDED refunds)."""
        return sum(refund.amount for refund in self.refunds.all() if refund.status == "succeeded")

    @property
    def refundable_amount(self) -> int:
        """Fen that may still be refunded: the amount less every refund not FAILED or CLOSED (sent or not)."""
        return self.amount - sum(
            refund.amount for refund in self.refunds.all() if refund.status not in ("failed", "closed")
        )

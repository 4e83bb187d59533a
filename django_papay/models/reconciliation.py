"""Reconciliation (对账): one day's trade bill from WeChat Pay against our records, and what differs.

A ``Reconciliation`` is the report for one Beijing day and one sub-merchant (or all of them: ``sub_mchid``
blank); running it again replaces the report. Its ``Discrepancy`` rows are every difference found, each with
both sides' numbers and amounts, and whether a query settled it (``fixed``: never hidden, shown as fixed).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


def bill_upload_to(reconciliation: Reconciliation, filename: str) -> str:
    """Where the bill as downloaded (gzip) is kept: one file per day and sub-merchant, under the site's storage."""
    who = reconciliation.sub_mchid or "all"
    return f"django_papay/bills/{reconciliation.bill_date:%Y/%m}/tradebill-{reconciliation.bill_date}-{who}.csv.gz"


class Reconciliation(models.Model):
    """One day's trade bill (ALL) reconciled against the sub-orders (and refunds) of that day."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        NOT_READY = "not_ready", _("bill not ready")
        BALANCED = "balanced", _("balanced")
        DISCREPANCIES = "discrepancies", _("discrepancies")
        FAILED = "failed", _("failed")

    bill_date = models.DateField(_("bill date"), help_text=_("The Beijing day the bill covers."))
    sub_mchid = models.CharField(
        _("sub-merchant id"), max_length=32, blank=True, help_text=_("Blank: every sub-merchant's trades.")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    hash_value = models.CharField(_("bill SHA1"), max_length=64, blank=True)
    bill_file = models.FileField(_("bill file"), upload_to=bill_upload_to, max_length=255, blank=True)
    bill_rows = models.PositiveIntegerField(_("bill rows"), default=0)
    payments_ours = models.PositiveIntegerField(_("payments (ours)"), default=0)
    payments_theirs = models.PositiveIntegerField(_("payments (WeChat Pay)"), default=0)
    payments_amount_ours = models.BigIntegerField(_("paid (ours, fen)"), default=0)
    payments_amount_theirs = models.BigIntegerField(_("paid (WeChat Pay, fen)"), default=0)
    refunds_ours = models.PositiveIntegerField(_("refunds (ours)"), default=0)
    refunds_theirs = models.PositiveIntegerField(_("refunds (WeChat Pay)"), default=0)
    refunds_amount_ours = models.BigIntegerField(_("refunded (ours, fen)"), default=0)
    refunds_amount_theirs = models.BigIntegerField(_("refunded (WeChat Pay, fen)"), default=0)
    fees_theirs = models.BigIntegerField(_("fees (WeChat Pay, fen)"), default=0)
    discrepancy_count = models.PositiveIntegerField(_("discrepancies"), default=0)
    fixed_count = models.PositiveIntegerField(_("fixed"), default=0)

    class Meta:
        verbose_name = _("reconciliation")
        verbose_name_plural = _("reconciliations")
        ordering = ("-bill_date", "sub_mchid")
        constraints = [models.UniqueConstraint(fields=("bill_date", "sub_mchid"), name="papay_one_report_per_day")]
        permissions = [("reconcile", _("Can reconcile days against WeChat Pay's bills"))]

    def __str__(self) -> str:
        return f"{self.bill_date} {self.sub_mchid or '*'}"


class Discrepancy(models.Model):
    """One difference between the bill and our records, with both sides' numbers and amounts (fen)."""

    class Kind(models.TextChoices):
        # In the bill, but not ours or not succeeded here: money moved that we do not know of (长款).
        MISSING_HERE = "missing_here", _("missing here (长款)")
        # Succeeded here, not in the bill: money we think moved that WeChat Pay does not show (短款).
        MISSING_THERE = "missing_there", _("missing there (短款)")
        AMOUNT = "amount", _("amount differs")
        STATE = "state", _("state differs")
        SUB_MERCHANT = "sub_merchant", _("sub-merchant differs")

    class Row(models.TextChoices):
        PAYMENT = "payment", _("payment")
        REFUND = "refund", _("refund")

    reconciliation = models.ForeignKey(
        Reconciliation, verbose_name=_("reconciliation"), on_delete=models.CASCADE, related_name="discrepancies"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    row = models.CharField(_("row"), max_length=8, choices=Row.choices, default=Row.PAYMENT)
    out_trade_no = models.CharField(_("merchant order number"), max_length=32, blank=True)
    transaction_id = models.CharField(_("WeChat Pay transaction id"), max_length=64, blank=True)
    out_refund_no = models.CharField(_("merchant refund number"), max_length=64, blank=True)
    refund_id = models.CharField(_("WeChat Pay refund id"), max_length=64, blank=True)
    sub_mchid = models.CharField(_("sub-merchant id"), max_length=32, blank=True)
    amount_ours = models.BigIntegerField(_("amount (ours, fen)"), null=True, blank=True)
    amount_theirs = models.BigIntegerField(_("amount (WeChat Pay, fen)"), null=True, blank=True)
    state_ours = models.CharField(_("state (ours)"), max_length=32, blank=True)
    state_theirs = models.CharField(_("state (WeChat Pay)"), max_length=32, blank=True)
    fixed = models.BooleanField(_("fixed"), default=False, help_text=_("A query to WeChat Pay settled it."))
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.out_refund_no or self.out_trade_no or self.transaction_id}"

"""Profit sharing (分账) and subsidies (补差): what the platform asked WeChat Pay to do with a charged sub-order.

A sub-order charged with ``profit_sharing`` lands frozen in its sub-merchant's account. ``ProfitShare`` is one
request about it — a share paying ``ShareReceiver``s (the platform's commission) or a finish unfreezing the
rest — ``ShareReturn`` one return of shared money (分账回退, before a refund), ``Subsidy`` one subsidy paid
into it (it must arrive before the sub-order can be shared). Each is stored, with its number, before it is sent;
the numbers are WeChat Pay's idempotency keys, so an unknown outcome is settled by sending the same number again.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from .deductions import SubOrder
from .stored_error import StoredError, last_error_message_field


def new_share_no() -> str:
    """A fresh out_order_no / out_return_no / out_subsidy_no: 32 hex characters, within string(64)."""
    return uuid.uuid4().hex


class ProfitShare(StoredError, models.Model):
    """One share (分账) or finish (完结分账) request for one sub-order, and WeChat Pay's result.

    CREATED: stored, not sent. PROCESSING: sent, the result not known or not final — the same
    ``out_order_no`` may be sent again ("同一分账单号多次请求等同一次"). FINISHED: WeChat Pay says done (each
    receiver's ``result`` says whether it was paid). FAILED only on a refusal signed by WeChat Pay.
    """

    class Kind(models.TextChoices):
        SHARE = "share", _("share")
        FINISH = "finish", _("finish")

    class Status(models.TextChoices):
        CREATED = "created", _("created")
        PROCESSING = "processing", _("processing")
        FINISHED = "finished", _("finished")
        FAILED = "failed", _("failed")

    sub_order = models.ForeignKey(
        SubOrder, verbose_name=_("sub-order"), on_delete=models.PROTECT, related_name="shares"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.SHARE)
    out_order_no = models.CharField(_("share number"), max_length=64, unique=True, default=new_share_no)
    order_id = models.CharField(_("WeChat Pay share id"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    finish = models.BooleanField(_("finish"), default=False, help_text=_("Also unfreeze what is not shared."))
    description = models.CharField(_("description"), max_length=80, blank=True)
    wechatpay_status = models.CharField(_("WeChat Pay status"), max_length=32, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("profit share")
        verbose_name_plural = _("profit shares")
        ordering = ("pk",)
        permissions = [
            ("share_profit", _("Can share and finish sub-orders (profit sharing)")),
            ("finish_sharing", _("Can finish profit sharing (unfreeze all)")),
        ]

    def __str__(self) -> str:
        return self.out_order_no

    @property
    def amount(self) -> int:
        """What this request shares, in fen (0 for a finish)."""
        return sum(receiver.amount for receiver in self.receivers.all())


class ShareReceiver(models.Model):
    """One receiver of a share and WeChat Pay's result for it (PENDING, SUCCESS, CLOSED, or as it came)."""

    share = models.ForeignKey(ProfitShare, verbose_name=_("share"), on_delete=models.CASCADE, related_name="receivers")
    type = models.CharField(_("receiver type"), max_length=16)
    account = models.CharField(_("receiver account"), max_length=64)
    amount = models.PositiveBigIntegerField(_("amount (fen)"))
    description = models.CharField(_("description"), max_length=80)
    # Sent encrypted (RSA-OAEP) each time; kept so that the same request can be sent again.
    name = models.CharField(_("receiver name"), max_length=128, blank=True)
    result = models.CharField(_("result"), max_length=16, blank=True)
    fail_reason = models.CharField(_("fail reason"), max_length=64, blank=True)
    detail_id = models.CharField(_("detail id"), max_length=64, blank=True)
    finish_time = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("share receiver")
        verbose_name_plural = _("share receivers")
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"{self.type} {self.account}"


class ShareReturn(StoredError, models.Model):
    """One return of shared money (分账回退) from a merchant receiver back to the sub-merchant."""

    class Result(models.TextChoices):
        CREATED = "created", _("created")
        PROCESSING = "processing", _("processing")
        SUCCESS = "success", _("success")
        FAILED = "failed", _("failed")

    share = models.ForeignKey(ProfitShare, verbose_name=_("share"), on_delete=models.PROTECT, related_name="returns")
    out_return_no = models.CharField(_("return number"), max_length=64, unique=True, default=new_share_no)
    return_id = models.CharField(_("WeChat Pay return id"), max_length=64, blank=True)
    return_mchid = models.CharField(_("returned by (merchant id)"), max_length=32)
    amount = models.PositiveBigIntegerField(_("amount (fen)"))
    description = models.CharField(_("description"), max_length=80)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, default=Result.CREATED)
    fail_reason = models.CharField(_("fail reason"), max_length=64, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("share return")
        verbose_name_plural = _("share returns")
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.out_return_no


class Subsidy(StoredError, models.Model):
    """The subsidy (补差) the platform pays into a sub-order charged with ``subsidy_amount``."""

    class Result(models.TextChoices):
        CREATED = "created", _("created")
        PROCESSING = "processing", _("processing")
        SUCCESS = "success", _("success")
        FAILED = "failed", _("failed")
        REFUNDED = "refunded", _("returned (REFUND)")

    sub_order = models.ForeignKey(
        SubOrder, verbose_name=_("sub-order"), on_delete=models.PROTECT, related_name="subsidies"
    )
    out_subsidy_no = models.CharField(_("subsidy number"), max_length=64, unique=True, default=new_share_no)
    subsidy_id = models.CharField(_("WeChat Pay subsidy id"), max_length=64, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (fen)"))
    description = models.CharField(_("description"), max_length=80)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, default=Result.CREATED)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_message = last_error_message_field()
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subsidy")
        verbose_name_plural = _("subsidies")
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.out_subsidy_no

"""What reconciliation looks at: the contracts, deductions and refunds WeChat Pay should be asked about now.

Shared by the commands (``papay_sync``, ``papay_settle``) and the fan-out tasks (``tasks.py``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..models import Contract, Deduction, Refund
from ..wechatpay import PRESIGN_SESSION


def contracts_to_sync(older_than_minutes: int = 10) -> QuerySet[Contract]:
    """Pre-signed at least that long ago, and expired ones not queried since expiring, oldest first."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    waiting = Q(status=Contract.Status.PRESIGNED, presigned_at__lte=cutoff)
    # The user may have signed just before the session ran out and the notification got lost.
    expired_unchecked = Q(status=Contract.Status.EXPIRED) & (
        Q(queried_at__isnull=True) | Q(queried_at__lt=F("presigned_at") + PRESIGN_SESSION)
    )
    return Contract.objects.filter(waiting | expired_unchecked).order_by("presigned_at")


def deductions_to_settle(older_than_seconds: int = 60) -> QuerySet[Deduction]:
    """Processing deductions sent at least that long ago, oldest first."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Deduction.objects.filter(status=Deduction.Status.PROCESSING, sent_at__lte=cutoff).order_by("sent_at")


def refunds_to_settle(older_than_seconds: int = 60) -> QuerySet[Refund]:
    """Processing refunds sent at least that long ago (and created ones never sent), oldest first.

    A minute by default: WeChat Pay takes one refund request per order a minute [C], so a re-send sooner
    would only be refused FREQUENCY_LIMITED.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    sent = Q(status=Refund.Status.PROCESSING, sent_at__lte=cutoff)
    unsent = Q(status=Refund.Status.CREATED, created_at__lte=cutoff)  # its sender died before claiming it
    return Refund.objects.filter(sent | unsent).order_by("created_at")


def deductions_too_recent(older_than_seconds: int = 60) -> int:
    """How many processing deductions ``deductions_to_settle`` leaves out for being sent too recently."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Deduction.objects.filter(status=Deduction.Status.PROCESSING, sent_at__gt=cutoff).count()

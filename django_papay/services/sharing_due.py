"""Which sub-orders are due to be shared, and which are frozen close to WeChat Pay's 180-day limit.

Shared by ``papay_share``, the tasks and dispatch (``share_many``), and the system check ``django_papay.W020``
(run with the database: ``manage.py check --database default``). A sub-order charged with ``profit_sharing``
is frozen until shared and finished; after 180 days WeChat Pay unfreezes it by itself and it can no longer be
shared, so the platform's commission is lost — the warning comes 10 days before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.checks import CheckMessage, Warning
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .. import conf, wechatpay
from ..exceptions import SharingStateError, WeChatPayError
from ..models import Deduction, ProfitShare, SubOrder
from .sharing import share

WARN_BEFORE = timedelta(days=10)


@dataclass(frozen=True)
class Shared:
    """What sharing did to one sub-order: its last ProfitShare, or the error that kept it from being sent."""

    sub_order: SubOrder
    share: ProfitShare | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def frozen_sub_orders(now: datetime | None = None) -> QuerySet[SubOrder]:
    """Paid sub-orders charged with profit_sharing whose sharing is not finished, oldest charge first.

    Not those charged more than 180 days ago: WeChat Pay has unfrozen them by itself, and shares no more.
    """
    finished = ProfitShare.objects.filter(sub_order=OuterRef("pk"), finish=True, status=ProfitShare.Status.FINISHED)
    now = now or timezone.now()
    return (
        SubOrder.objects.filter(profit_sharing=True, deduction__status=Deduction.Status.SUCCEEDED)
        .exclude(transaction_id="")
        .exclude(_charged_before(now - wechatpay.SHARING_LIMIT))
        .exclude(Exists(finished))
        .select_related("deduction")
        .order_by("deduction__settled_at", "pk")
    )


def _charged_before(moment: datetime) -> Q:
    return Q(success_time__lte=moment) | Q(success_time__isnull=True, deduction__settled_at__lte=moment)


def sub_orders_to_share(share_after: float | None = None, now: datetime | None = None) -> QuerySet[SubOrder]:
    """Frozen sub-orders charged at least ``share_after`` seconds ago (default ``PAPAY["SHARE_AFTER"]``).

    None when the setting is not set either: then nothing is due by itself (``papay_share --all`` passes 0).
    """
    delay = conf.share_after() if share_after is None else share_after
    if delay is None:
        return SubOrder.objects.none()
    now = now or timezone.now()
    return frozen_sub_orders(now).filter(_charged_before(now - timedelta(seconds=delay)))


def near_the_limit(now: datetime | None = None) -> QuerySet[SubOrder]:
    """Frozen sub-orders charged more than 170 days ago: WeChat Pay unfreezes them, unshared, at 180."""
    now = now or timezone.now()
    return frozen_sub_orders(now).filter(_charged_before(now - (wechatpay.SHARING_LIMIT - WARN_BEFORE)))


def share_many(sub_orders: Sequence[SubOrder]) -> list[Shared]:
    """``share`` (the commission rule, then finish) for each sub-order here; never raises for one's error."""
    results = []
    for sub_order in sub_orders:
        try:
            results.append(Shared(sub_order, share(sub_order)))
        except (SharingStateError, ValidationError, WeChatPayError) as exc:
            results.append(Shared(sub_order, error=exc))
    return results


def check_frozen_near_limit(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W020: sub-orders frozen within 10 days of the 180-day limit (only when checks run with a database)."""
    if not databases:
        return []
    try:
        count = near_the_limit().count()
    except DatabaseError:  # migrate runs the database checks before its tables exist
        return []
    if not count:
        return []
    return [
        Warning(
            f"{count} sub-orders charged with profit_sharing are frozen within {WARN_BEFORE.days} days of WeChat "
            f"Pay's {wechatpay.SHARING_LIMIT.days}-day limit; after it they unfreeze unshared (no commission).",
            hint="Run manage.py papay_share --all (or share them in the admin). See docs/sharing.md.",
            id="django_papay.W020",
        )
    ]

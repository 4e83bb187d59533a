"""How times read to people — admin messages, columns and notices, notes on notifications, command output:
one format (``2026-11-27 14:24``), in the site's time zone (the active one; ``TIME_ZONE`` by default)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

TIME_FORMAT = "%Y-%m-%d %H:%M"


def local_time(moment: datetime | None) -> str:
    """``moment`` in the site's time zone, to the minute; ``-`` for none."""
    if moment is None:
        return "-"
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime(TIME_FORMAT)


def ago(moment: datetime, now: datetime | None = None) -> str:
    """``5 minutes ago``; ``just now`` within the first minute (never ``0 minutes ago``)."""
    now = now or timezone.now()
    if (now - moment).total_seconds() < 60:
        return _("just now")
    return _("%(time)s ago") % {"time": timesince(moment, now, depth=1)}


def time_left(moment: datetime, now: datetime | None = None) -> str:
    """``1 hour, 59 minutes``; ``less than a minute`` in the last one."""
    now = now or timezone.now()
    if (moment - now).total_seconds() < 60:
        return _("less than a minute")
    return timeuntil(moment, now, depth=2)

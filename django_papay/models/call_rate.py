"""The call rate every process shares: ``CallWindow``, WeChat Pay calls counted per second (``ratelimit.py``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CallWindow(models.Model):
    """How many WeChat Pay calls the workers of every host started in one second (``MAX_CALLS_PER_SECOND``).

    One row per second in use, counted up with one conditional UPDATE; old rows are deleted as new ones come.
    """

    second = models.BigIntegerField(_("second (Unix time)"), primary_key=True)
    calls = models.PositiveIntegerField(_("calls"), default=0)

    class Meta:
        verbose_name = _("call window")
        verbose_name_plural = _("call windows")

    def __str__(self) -> str:
        return f"{self.second}: {self.calls}"

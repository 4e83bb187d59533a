"""What the App's self-service signing keeps: each user's contract per plan, and the pre-signs they caused."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .contracts import Contract


class AppSigning(models.Model):
    """The contract a user signs for a plan from the App: one per user and plan, found again on every tap.

    The unique constraint is what stops two taps at once from making two contracts, and the row is what a
    pre-sign locks, so a second tap waits for the first one's session instead of opening another. When the
    contract is terminated, the next tap points the row at a new contract; the old one stays as it was.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="papay_app_signings"
    )
    plan_id = models.PositiveBigIntegerField(_("plan id"))
    contract = models.OneToOneField(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="app_signing"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("App signing")
        verbose_name_plural = _("App signings")
        constraints = [
            models.UniqueConstraint(fields=["user", "plan_id"], name="django_papay_one_app_signing_per_user_plan")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.plan_id}"


class PresignAttempt(models.Model):
    """One pre-sign a user's tap made this site send to WeChat Pay: counted against PAPAY["APP_PRESIGN_LIMIT"].

    Kept in the database, so the budget holds across processes and hosts; rows older than the window are
    deleted as new ones are claimed.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="papay_presign_attempts",
    )
    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    error = models.TextField(_("error"), blank=True, help_text=_("WeChat Pay's error, when the pre-sign failed."))

    class Meta:
        verbose_name = _("pre-sign attempt")
        verbose_name_plural = _("pre-sign attempts")
        indexes = [models.Index(fields=["user", "created_at"], name="django_papay_attempt_user_at")]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"

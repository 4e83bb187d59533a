"""The audit trail of every delivery to the notify view."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .contracts import Contract


def storable(value: Any) -> Any:
    """``value`` in a form every database stores, for the log of whatever arrived.

    PostgreSQL refuses NUL in text and jsonb, no UTF-8 database takes a lone surrogate (a JSON ``"\\ud800"``
    escape makes one), and jsonb refuses NaN and Infinity (``1e999`` parses to one): those are written out
    as text instead, in strings, dict keys and lists alike; everything else is returned as it is.
    """
    if isinstance(value, str):
        if value.isascii():  # most of what arrives: no surrogate can be in it, only NUL to write out
            return value.replace("\x00", "\\x00")
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
    notification_id = models.CharField(_("notification id"), max_length=64, blank=True)
    event_type = models.CharField(_("event type"), max_length=64, blank=True)
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
        Contract,
        verbose_name=_("contract"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    refund = models.ForeignKey(
        "django_papay.Refund",
        verbose_name=_("refund"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ("-received_at", "-pk")
        permissions = [("reprocess_notification", _("Can reprocess failed notifications"))]
        # Only what a query uses: the duplicate check (verified, processed rows by id: a partial index, so
        # the rejected flood of a forger adds nothing to it), the admin's ordering and date drill-down
        # (received_at), and the contract's inline (the foreign key's own index).
        indexes = [
            models.Index(
                fields=["notification_id"], condition=Q(verified=True, processed=True), name="papay_notif_processed_id"
            ),
        ]

    def __str__(self) -> str:
        label = self.event_type or str(_("unparsed delivery"))
        return f"{label} {self.notification_id}".strip()

    def save(self, *args, **kwargs) -> None:
        # Only the fields being written are escaped: an UPDATE of the result does not re-escape the body.
        written = kwargs.get("update_fields")
        self.make_storable(
            STORABLE_FIELDS if written is None else [name for name in STORABLE_FIELDS if name in written]
        )
        super().save(*args, **kwargs)

    def make_storable(self, fields: Iterable[str] | None = None) -> None:
        """Pass ``fields`` (default: every text and JSON field) through ``storable``, in place."""
        for name in STORABLE_FIELDS if fields is None else fields:
            value = storable(getattr(self, name))
            # Escaping can lengthen an id, so the column's limit is applied after it.
            setattr(self, name, value[:64] if name in SHORT_FIELDS else value)


# What ``storable`` passes over before a row is written; the short ones are cut to their column's 64 characters.
STORABLE_FIELDS = ("notification_id", "event_type", "body", "error", "note", "headers", "resource")
SHORT_FIELDS = frozenset({"notification_id", "event_type"})

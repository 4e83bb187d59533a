"""What the admins share: columns (a time in the package's one format, yuan, a status badge, a short error, a
code on one line) and ``ReadOnlyMixin`` for what is WeChat Pay's word.

A list never breaks a word across lines (a 32-character code, ``CONTRACT_NOT_EXIST``, ``138****8888``): a code
stays on one line and is cut with an ellipsis when its column is narrow, an error wraps between words and cuts
a word too long for its column; either way the whole text is the cell's title (``papay-code``, ``papay-text``
in ``django_papay/admin.css``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

from ..display import local_time

SHORT_ERROR_CHARS = 60
NON_BREAKING_HYPHEN = "\u2011"


def yuan(fen: int | None) -> str:
    """``1500`` → ``¥15.00``: amounts are stored in fen, shown in yuan."""
    if fen is None:
        return "-"
    return f"¥{Decimal(fen) / 100:,.2f}"


def badge(obj: Any) -> SafeString:
    """``obj.status`` as a coloured badge (``papay-status-<STATUS>`` in ``django_papay/admin.css``)."""
    return format_html('<span class="papay-status papay-status-{}">{}</span>', obj.status, obj.get_status_display())


def code(value: object, url: str | None = None) -> SafeString:
    """A code, id or event type for a list: one line, cut with an ellipsis if need be, whole in its title;
    a link to ``url`` when given."""
    text = "-" if value in (None, "") else str(value)
    if url:
        return format_html('<a class="papay-code" href="{}" title="{}">{}</a>', url, text, text)
    return format_html('<span class="papay-code" title="{}">{}</span>', text, text)


def code_column(field: str, description: Any) -> Callable[[Any, Any], SafeString]:
    """A ``list_display`` entry showing ``obj.<field>`` as a ``code``."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> SafeString:
        return code(getattr(obj, field))

    return column


def codes(model: Any, *fields: str) -> Callable[[type], type]:
    """Class decorator for a ModelAdmin: for each ``field`` of ``model``, an entry ``<field>_code`` (labelled with
    the field's verbose name) for ``list_display``, shown as a ``code``."""

    def decorate(cls: type) -> type:
        for field in fields:
            setattr(cls, f"{field}_code", code_column(field, model._meta.get_field(field).verbose_name))
        return cls

    return decorate


def shortened(text: str, limit: int = SHORT_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for a list column (the page shows it whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StatusColumns:
    """``status_badge`` and ``short_error`` (of ``last_error``, in the reader's language) for a ModelAdmin's
    ``list_display``. A change page shows the whole error as ``error_display`` (the model's) in place of
    ``last_error``, which holds the English text."""

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: Any) -> str:
        return badge(obj)

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, obj: Any) -> str:
        text = obj.error_display()
        if not text:
            return ""
        # Shown with non-breaking hyphens, so "Request-ID" or a date never wraps at its hyphen; the title is whole.
        shown = shortened(text).replace("-", NON_BREAKING_HYPHEN)
        return format_html('<span class="papay-text" title="{}">{}</span>', text, shown)


class ReadOnlyMixin:
    """WeChat Pay's word (an audit trail, a sent charge, a run of them): nobody adds, edits or deletes it here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def time_column(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A ``list_display`` or read-only entry showing ``obj.<field>`` as ``2026-11-27 14:24``, site time."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> SafeString:
        return moment(getattr(obj, field))

    return column


def moment(value: Any, *, wrap: bool = False) -> SafeString:
    """A time as ``local_time`` gives it, which a list never breaks at a hyphen (``2026-`` / ``12-03``);
    ``wrap``: it may break between the date and the minute, for a narrow column."""
    if not wrap:
        return format_html('<span class="papay-time">{}</span>', local_time(value))
    parts = local_time(value).split(" ")
    return format_html_join(" ", '<span class="papay-time">{}</span>', ((part,) for part in parts))


def local_times(model: Any, *fields: str) -> Callable[[type], type]:
    """Class decorator for a ModelAdmin or inline: for each datetime ``field`` of ``model``, an entry
    ``<field>_local`` (labelled with the field's verbose name) to put in ``fields``/``list_display`` instead of
    Django's own rendering, so a page shows the same format as the messages."""

    def decorate(cls: type) -> type:
        for field in fields:
            setattr(cls, f"{field}_local", time_column(field, model._meta.get_field(field).verbose_name))
        return cls

    return decorate

"""Columns the admins share: a time in the package's one format (``display.local_time``), sortable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin

from ..display import local_time


def time_column(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A ``list_display`` or read-only entry showing ``obj.<field>`` as ``2026-11-27 14:24``, site time."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return local_time(getattr(obj, field))

    return column


def local_times(model: Any, *fields: str) -> Callable[[type], type]:
    """Class decorator for a ModelAdmin or inline: for each datetime ``field`` of ``model``, an entry
    ``<field>_local`` (labelled with the field's verbose name) to put in ``fields``/``list_display`` instead of
    Django's own rendering, so a page shows the same format as the messages."""

    def decorate(cls: type) -> type:
        for field in fields:
            setattr(cls, f"{field}_local", time_column(field, model._meta.get_field(field).verbose_name))
        return cls

    return decorate

"""``{% load papay %}``: ``{{ moment|local_time }}``, the package's one way of showing a time (see display.py)."""

from __future__ import annotations

from datetime import datetime

from django import template

from .. import display

register = template.Library()


@register.filter
def local_time(moment: datetime | None) -> str:
    return display.local_time(moment)

"""What a ``PAPAY`` value may be: one rule per shape (an https URL, seconds, a switch, an AppID…).

A rule takes the value a site gives (or the setting's default) and returns what the accessor gives, typed;
a value it refuses raises ``Invalid`` with the words that end "settings.PAPAY[KEY] must be …". The rows of
the settings table in conf.py name their rule.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from . import crypto

T = TypeVar("T")


class Invalid(ValueError):
    """A value that breaks its rule; the message ends "settings.PAPAY[KEY] must be …"."""


def optional(rule: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """``rule``, except that ``None`` (the default: not set) stays ``None``."""
    return lambda value: None if value is None else rule(value)


def matching(pattern: str, what: str) -> Callable[[Any], str]:
    def rule(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise Invalid(what)
        return value

    return rule


def apiv3_key(value: Any) -> bytes:
    if not isinstance(value, str) or len(value.encode("utf-8")) != crypto.APIV3_KEY_BYTES:
        raise Invalid("the 32-character APIv3 key")
    return value.encode("utf-8")


def appid(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 32:
        raise Invalid("an AppID of at most 32 characters")
    return value


def appids(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(item, str) and 0 < len(item) <= 32 for item in value):
        raise Invalid("a list of AppIDs of at most 32 characters")
    return tuple(value)


def notify_url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    # WeChat Pay refuses a notify_url that is not https or that carries a query string.
    if not parts or parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment or len(value) > 256:
        raise Invalid("an absolute https:// URL of at most 256 characters without a query string")
    return value


def host_url(example: str) -> Callable[[Any], str]:
    def rule(value: Any) -> str:
        parts = urlsplit(value) if isinstance(value, str) else None
        if not parts or parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
            raise Invalid(f"an absolute URL such as {example}")
        return value.rstrip("/")

    return rule


def timeout(value: Any) -> tuple[float, float]:
    pair = (value, value) if isinstance(value, (int, float)) else value
    try:
        connect, read = (float(part) for part in pair)
    except (TypeError, ValueError):
        connect = read = -1.0
    if isinstance(value, bool) or connect <= 0 or read <= 0:
        raise Invalid("positive seconds, or a (connect, read) pair")
    return connect, read


def seconds(*, zero: bool = False) -> Callable[[Any], float]:
    def rule(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not zero):
            raise Invalid("a number of seconds (0 or more)" if zero else "a positive number of seconds")
        return float(value)

    return rule


def switch(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("True or False")
    return value


def switch_or_none(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise Invalid("True, False or None")
    return value


def whole_number(what: str, low: int, high: int | None = None) -> Callable[[Any], int]:
    def rule(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise Invalid(what)
        return value

    return rule


def existing_path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.path.exists(value):
        raise Invalid(f"the path of a PEM file (or folder) of CA certificates; {value!r} is not")
    return os.fspath(value)


def pem_text(value: Any) -> str | bytes:
    if not isinstance(value, (str, bytes)):
        raise Invalid("PEM text")
    return value


def pem_path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise Invalid("the path of a PEM file")
    return os.fspath(value)


def plan_ids(value: Any) -> frozenset[int]:
    if (
        not isinstance(value, (list, tuple, set, frozenset))
        or not value
        or any(isinstance(plan, bool) or not isinstance(plan, int) or plan < 1 for plan in value)
    ):
        raise Invalid("a list of plan ids (positive whole numbers)")
    return frozenset(value)


def presign_limit(value: Any) -> tuple[int, float]:
    try:
        count, seconds = value
    except (TypeError, ValueError):
        count = seconds = None
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or count < 1
        or isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or seconds <= 0
    ):
        raise Invalid("(count, seconds), e.g. (10, 3600) for 10 pre-signs an hour")
    return count, float(seconds)


def function(value: Any) -> Callable[..., Any]:
    if callable(value):
        return value
    try:
        return cast(Callable[..., Any], import_string(value))
    except (ImportError, TypeError) as exc:
        raise Invalid(f"a function or the dotted path of one: {exc}") from exc

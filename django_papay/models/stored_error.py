"""``StoredError``: how a row keeps its last error, as the message it is (``stored_messages``), read in the
reader's language.

Each model with ``last_error`` has ``last_error_message`` beside it and this mixin: writers set both
through ``set_error`` (or ``stored_messages.error_columns`` for a ``QuerySet.update``), readers (the
admin, the commands, the App's endpoints) show ``error_display()``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..stored_messages import Error, Message, error_columns, rendered, stored

ERROR_FIELDS = ("last_error", "last_error_message")


def last_error_message_field() -> models.JSONField:
    """The message of ``last_error``: its template and parameters, rendered when read (None: old rows, and
    WeChat Pay's own words, which ``last_error`` holds as they came)."""
    return models.JSONField(_("last error (message)"), null=True, blank=True, editable=False)


class StoredError:
    """``set_error`` for writers, ``error_display`` and ``stored_error`` for readers."""

    last_error: str
    last_error_message: Any

    def set_error(self, error: Error) -> list[str]:
        """Set both columns on the instance; the fields to save."""
        for name, value in error_columns(error).items():
            setattr(self, name, value)
        return list(ERROR_FIELDS)

    def stored_error(self) -> Message | str:
        """The error as a message (to nest in another), or its text when no message was stored."""
        return stored(self.last_error_message, self.last_error)

    def error_display(self) -> str:
        """The error in the active language; the stored English text for rows written before messages."""
        return rendered(self.last_error_message, self.last_error)

    error_display.short_description = _("last error")  # type: ignore[attr-defined]

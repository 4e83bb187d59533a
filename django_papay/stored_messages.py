"""Messages stored on rows (``last_error``) as what they say, rendered in the reader's language.

A task or a cron run writes in English, an admin action in the staff member's language: text rendered when
it is written reads wrong to everyone else. So a row keeps the message itself, its English template (the
msgid, which the .po translates) and its parameters, as JSON (``Message.as_json``), and each reader renders
it in the active language. ``last_error`` keeps the English rendering beside it: what search, CSV exports,
logs and commands read, and what a row written before messages were stored still shows.

WeChat Pay's own words (a WeChatPayError's code, message, HTTP status and Request-ID) are not ours to
translate: they are stored as they came, alone or as a parameter of one of our messages. Knows no model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Union

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext, override

Param = Union[str, int, None, "Message"]
# What a row's error is set from: one of our messages, text stored as it is ("" for none), or an exception
# (its text; a ValidationError's messages, which are ours, as messages).
Error = Union["Message", str, BaseException, None]


class Message:
    """An English template (a msgid) and its parameters; ``str()`` renders it in the active language.

    Parameters are text, integers, None (shown as ``-``) or nested messages. A lazy translation (a Choices
    label) becomes a nested message of its English text, so it is rendered in the reader's language too;
    an exception becomes its text. ``Message("…")`` does not mark a template for the .po: write it inside
    ``gettext_noop`` at the call.
    """

    __slots__ = ("params", "template")

    def __init__(self, template: str | Promise, /, **params: object) -> None:
        self.template = english_text(template)
        self.params: dict[str, Param] = {name: _param(value) for name, value in params.items()}

    @classmethod
    def join(cls, parts: Iterable[Message | str], separator: str = " ") -> Message:
        """The non-empty ``parts`` one after another, each rendered in the reader's language."""
        kept = [part for part in parts if part]
        names = [str(index) for index in range(len(kept))]
        return cls(separator.join(f"%({name})s" for name in names), **dict(zip(names, kept, strict=True)))

    def render(self, default: str | None = None) -> str:
        """In the active language. Never raises: a translation whose placeholders do not fit the stored
        parameters falls back to the English template; when even that does not fit, ``default`` (the row's
        English text), or the bare template."""
        params = {name: _rendered(value) for name, value in self.params.items()}
        translated = gettext(self.template) if self.template else ""
        if not params:
            return translated
        for template in (translated, self.template):
            try:
                return template % params
            except (KeyError, TypeError, ValueError):
                continue
        return self.template if default is None else default

    def english(self) -> str:
        """The English rendering: what ``last_error`` keeps."""
        with override("en"):
            return self.render()

    __str__ = render

    def __repr__(self) -> str:
        return f"Message({self.template!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.template, self.params) == (other.template, other.params)

    __hash__ = None  # type: ignore[assignment]  # mutable params: equal messages need not hash alike

    def as_json(self) -> dict[str, Any]:
        """``{"m": template, "p": {name: value or nested message}}``; no ``p`` without parameters."""
        data: dict[str, Any] = {"m": self.template}
        if self.params:
            data["p"] = {
                name: value.as_json() if isinstance(value, Message) else value for name, value in self.params.items()
            }
        return data

    @classmethod
    def from_json(cls, data: object) -> Message:
        """The message ``as_json`` made; ValueError when ``data`` is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("m"), str):
            raise ValueError(f"not a stored message: {data!r}")
        params = data.get("p", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"not a stored message's parameters: {params!r}")
        message = cls(data["m"])
        for name, value in params.items():
            if isinstance(value, Mapping):
                message.params[str(name)] = cls.from_json(value)
            elif value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                message.params[str(name)] = value
            else:
                raise ValueError(f"not a stored message's parameter: {value!r}")
        return message


def english_text(text: str | Promise) -> str:
    """A lazy translation's source text (the project ships no English catalog, so English is the msgid)."""
    if isinstance(text, Promise):
        with override("en"):
            return str(text)
    return text


def _param(value: object) -> Param:
    if value is None or isinstance(value, (str, Message)) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, Promise):
        return Message(english_text(value))
    if isinstance(value, ValidationError):
        return validation_message(value)
    return str(value)


def _rendered(value: Param) -> str | int:
    if value is None:
        return "-"
    return value.render() if isinstance(value, Message) else value


def validation_message(error: ValidationError) -> Message:
    """A ValidationError's messages joined with "; ", as ``describe_error`` words them, each a message of
    its own when its text is a lazy translation (the models' validators: they are ours)."""
    parts: list[Message | str] = []
    for item in error.error_list:
        text, params = item.message, item.params
        if isinstance(text, Promise):
            parts.append(Message(text, **params) if isinstance(params, Mapping) else Message(text))
        else:
            parts.append(str(text) % params if isinstance(params, Mapping) and params else str(text))
    return Message.join(parts, "; ")


def error_columns(error: Error) -> dict[str, Any]:
    """The two columns a row keeps an error in, for ``save`` or ``QuerySet.update``: ``last_error``, the
    English text, and ``last_error_message``, the message (None: the text is all there is)."""
    if isinstance(error, ValidationError):
        error = validation_message(error)
    if isinstance(error, Message) and error.template:  # an empty one: Message.join of nothing
        return {"last_error": error.english(), "last_error_message": error.as_json()}
    return {"last_error": "" if error is None or isinstance(error, Message) else str(error), "last_error_message": None}


def stored(data: object, text: str) -> Message | str:
    """A row's error as a message again, to nest in another; its English ``text`` when none was stored."""
    if data is None:
        return text
    try:
        # A row read around the ORM (the PostgreSQL notify store's raw SELECT) holds the JSON undecoded.
        return Message.from_json(json.loads(data) if isinstance(data, str) else data)
    except ValueError:  # json.JSONDecodeError too
        return text


def rendered(data: object, text: str) -> str:
    """A row's error in the active language; its English ``text`` when no (readable) message was stored."""
    message = stored(data, text)
    return message.render(default=text) if isinstance(message, Message) else message

"""The checks WeChat Pay makes before it looks at a request: headers, the signature, then the body.

Each check raises :class:`ApiError` with the status and code WeChat Pay would answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from django_papay import crypto, wechatpay

from .replies import ApiError

INT64_MAX = 2**63 - 1

_CONTRACT_CODE = re.compile(r"[0-9A-Za-z]+")
_TRADE_NO_CHARACTERS = frozenset(wechatpay.ALPHANUMERIC + "_-|*@")


def _media_types(value: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in value.split(",")]


def check_headers(method: str, headers: Mapping[str, str], *, wechatpay_public_key_id: str) -> None:
    """``User-Agent``, ``Accept`` and ``Content-Type`` as WeChat Pay requires, and the serial the merchant
    asks its answers to be signed with."""
    if not headers.get("User-Agent", "").strip():
        raise ApiError(400, wechatpay.INVALID_REQUEST, "User-Agent is required")
    accept = headers.get("Accept", "")
    if not set(_media_types(accept)) & {"application/json", "application/*", "*/*"}:
        raise ApiError(400, wechatpay.INVALID_REQUEST, f"Accept must allow application/json, got {accept!r}")
    if method == "POST":
        content_type = headers.get("Content-Type", "")
        if _media_types(content_type)[0] != "application/json":
            raise ApiError(
                400, wechatpay.INVALID_REQUEST, f"Content-Type must be application/json, got {content_type!r}"
            )
    serial = headers.get(wechatpay.SERIAL_HEADER, "")
    if serial.startswith(wechatpay.PUBLIC_KEY_ID_PREFIX) and serial != wechatpay_public_key_id:
        message = f"Wechatpay-Serial {serial} is not this merchant's WeChat Pay public key"
        raise ApiError(400, wechatpay.PARAM_ERROR, message)


def check_authorization(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    mchid: str,
    serial_no: str,
    public_key: rsa.RSAPublicKey,
) -> None:
    """The ``Authorization`` header: schema, merchant, certificate serial, clock, nonce and signature."""
    header = headers.get("Authorization", "")
    if not header:
        raise ApiError(401, wechatpay.SIGN_ERROR, "Authorization header is missing")
    fields = crypto.parse_authorization(header)
    if not fields:
        message = f'Authorization is not {wechatpay.SIGNATURE_TYPE} key="value",... fields'
        raise ApiError(401, wechatpay.SIGN_ERROR, message)
    if fields.get("mchid") != mchid:
        raise ApiError(401, wechatpay.SIGN_ERROR, "Authorization mchid does not match the merchant")
    if fields.get("serial_no") != serial_no:
        message = "Authorization serial_no is not the merchant's API certificate serial"
        raise ApiError(401, wechatpay.SIGN_ERROR, message)
    timestamp = fields.get("timestamp", "")
    if not timestamp.isdigit() or not crypto.timestamp_is_fresh(timestamp, window=wechatpay.TIMESTAMP_WINDOW):
        message = f"Authorization timestamp is more than {wechatpay.TIMESTAMP_WINDOW} s off"
        raise ApiError(401, wechatpay.SIGN_ERROR, message)
    nonce = fields.get("nonce_str", "")
    if not nonce:
        raise ApiError(401, wechatpay.SIGN_ERROR, "Authorization nonce_str is missing")
    signed = crypto.request_message(method, path, timestamp, nonce, body)
    if not crypto.verify(public_key, signed, fields.get("signature", "")):
        raise ApiError(401, wechatpay.SIGN_ERROR, "Authorization signature does not verify with the merchant's key")


# --- body rules -----------------------------------------------------------------------------

# A rule returns what is wrong with a present value, or "" when it is fine.
Rule = Callable[[Any], str]


@dataclass(frozen=True)
class FieldRule:
    name: str
    rule: Rule
    required: bool = True


def string(min_length: int = 1, max_length: int = 32) -> Rule:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            return "must be a string"
        if not min_length <= len(value) <= max_length:
            return f"length must be {min_length} to {max_length} characters"
        return ""

    return check


def positive_integer(value: Any) -> str:
    # bool is an int in Python, but true is not a JSON number.
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be an integer"
    if not 0 < value <= INT64_MAX:
        return "must be a positive 64-bit integer"
    return ""


def non_negative_integer(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT64_MAX:
        return "must be a non-negative 64-bit integer"
    return ""


def digits(value: Any) -> str:
    """A merchant id: 1 to 32 ASCII digits."""
    problem = string(1, 32)(value)
    return problem or ("" if value.isascii() and value.isdigit() else "must be digits")


def trade_no(value: Any) -> str:
    """An order number: 1 to 32 of digits, letters and ``_-|*@``."""
    problem = string(1, 32)(value)
    if problem:
        return problem
    return "" if set(value) <= _TRADE_NO_CHARACTERS else "may contain only digits, letters and _-|*@"


def refund_no(value: Any) -> str:
    """A refund number: 1 to 64 of digits, letters and ``_-|*@``."""
    problem = string(1, 64)(value)
    if problem:
        return problem
    return "" if set(value) <= _TRADE_NO_CHARACTERS else "may contain only digits, letters and _-|*@"


def one_of(*allowed: Any) -> Rule:
    def check(value: Any) -> str:
        return "" if value in allowed else f"must be one of {', '.join(map(str, allowed))}"

    return check


def object_of(rules: tuple[FieldRule, ...]) -> Rule:
    """A nested JSON object whose fields follow ``rules``; the first problem names its field."""

    def check(value: Any) -> str:
        if not isinstance(value, dict):
            return "must be an object"
        problem = first_problem(value, rules)
        return f"{problem[0]} {problem[1]}" if problem else ""

    return check


def list_of(rules: tuple[FieldRule, ...], min_items: int, max_items: int) -> Rule:
    """A JSON array of ``min_items`` to ``max_items`` objects, each following ``rules``."""
    each = object_of(rules)

    def check(value: Any) -> str:
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            return f"must be an array of {min_items} to {max_items} items"
        for index, item in enumerate(value):
            problem = each(item)
            if problem:
                return f"[{index}] {problem}"
        return ""

    return check


def boolean(value: Any) -> str:
    return "" if isinstance(value, bool) else "must be a boolean"


def contract_code(value: Any) -> str:
    problem = string(1, 32)(value)
    if problem:
        return problem
    return "" if _CONTRACT_CODE.fullmatch(value) else "may contain only digits and ASCII letters"


def notify_url(value: Any) -> str:
    problem = string(1, 256)(value)
    if problem:
        return problem
    if any(char.isspace() or ord(char) < 0x20 for char in value):
        return "must not contain whitespace"
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        return "must be an absolute https:// URL"
    if "?" in value:
        return "must not carry a query string"
    if "#" in value:
        return "must not carry a fragment"
    return ""


def check_body(body: bytes, rules: tuple[FieldRule, ...]) -> dict[str, Any]:
    """Parse a JSON object body and apply ``rules`` in order; the first failing field is reported.

    Unknown extra fields are ignored, as WeChat Pay does.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, wechatpay.PARAM_ERROR, "请求参数错误：the body must be a JSON object")
    problem = first_problem(data, rules)
    if problem:
        name, issue = problem
        _refuse(name, data.get(name), issue)
    return data


def first_problem(data: dict[str, Any], rules: tuple[FieldRule, ...]) -> tuple[str, str] | None:
    """``(field, issue)`` for the first field of ``data`` that breaks its rule, in the rules' order."""
    for field in rules:
        if field.name not in data:
            if field.required:
                return field.name, "is required"
            continue
        issue = field.rule(data[field.name])
        if issue:
            return field.name, issue
    return None


def _refuse(name: str, value: Any, issue: str) -> None:
    detail = {"field": name, "value": value, "issue": issue, "location": "body"}
    raise ApiError(400, wechatpay.PARAM_ERROR, f"请求参数错误：{name} {issue}", detail)

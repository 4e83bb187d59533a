"""What a charge may be: the caller's sub-orders and numbers checked against WeChat Pay's rules, and whether a
contract can be charged now. Nothing here is stored or sent: every refusal is a ValidationError (bad input)
or a reason the contract cannot be charged, raised before the deduction exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import conf, wechatpay
from ..display import local_time
from ..models import Contract, SubOrder, appid_validator, trade_no_validator
from ..stored_messages import Message

REQUIRED_KEYS = ("sub_mchid", "description", "amount")
OPTIONAL_KEYS = ("out_trade_no", "attach", "sub_appid", "profit_sharing", "subsidy_amount", "sub_risk_info")
TEXT_KEYS = ("sub_mchid", "description", "out_trade_no", "attach", "sub_appid", "sub_risk_info")
# What no WeChat Pay text field carries: control characters (C0, DEL, C1; PostgreSQL cannot even store a
# NUL) and surrogates, which UTF-8 cannot encode, so they can be neither stored nor sent.
NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_sub_orders(sub_orders: Sequence[Mapping[str, Any]]) -> list[SubOrder]:
    """Unsaved SubOrders for the caller's mappings, checked against WeChat Pay's rules; ValidationError if not."""
    if (
        isinstance(sub_orders, (str, bytes, Mapping))
        or not isinstance(sub_orders, Sequence)
        or not 1 <= len(sub_orders) <= wechatpay.MAX_SUB_ORDERS
    ):
        raise ValidationError(
            {"sub_orders": _("Give a list of 1 to %(max)d sub-orders.") % {"max": wechatpay.MAX_SUB_ORDERS}}
        )
    cleaned = [_clean_sub_order(number, item) for number, item in enumerate(sub_orders, 1)]
    numbers = [sub_order.out_trade_no for sub_order in cleaned if sub_order.out_trade_no]
    if len(set(numbers)) != len(numbers):
        raise ValidationError({"sub_orders": _("Each sub-order needs its own out_trade_no.")})
    return cleaned


def _clean_sub_order(number: int, item: Mapping[str, Any]) -> SubOrder:
    def refuse(message: str) -> ValidationError:
        return ValidationError({"sub_orders": _("Sub-order %(n)d: %(problem)s") % {"n": number, "problem": message}})

    if not isinstance(item, Mapping):
        raise refuse(_("give a mapping of sub_mchid, description and amount."))
    unknown = sorted(set(item) - {*REQUIRED_KEYS, *OPTIONAL_KEYS})
    missing = [key for key in REQUIRED_KEYS if key not in item]
    problems = []
    if missing:
        problems.append(_("%(keys)s missing") % {"keys": ", ".join(missing)})
    if unknown:
        problems.append(
            _("%(keys)s not a sub-order field (these are: %(known)s)")
            % {"keys": ", ".join(map(str, unknown)), "known": ", ".join((*REQUIRED_KEYS, *OPTIONAL_KEYS))}
        )
    if problems:
        raise refuse("; ".join(problems) + ".")
    for key in TEXT_KEYS:
        problem = text_problem(item[key]) if item.get(key) is not None else ""
        if problem:
            raise refuse(f"{key}: {problem}")
    for key in ("amount", "subsidy_amount"):
        value = item.get(key)
        # A float or a Decimal is most likely yuan: 15.00 yuan is 1500 fen. Refuse rather than guess.
        if value is not None and (type(value) is not int or value < (1 if key == "amount" else 0)):
            raise refuse(
                _("%(key)s must be a whole number of fen (15.00 yuan is 1500), got %(value)r.")
                % {"key": key, "value": value}
            )
        if value is not None and value > wechatpay.MAX_SUB_ORDER_AMOUNT:
            raise refuse(
                _("%(key)s is over %(max)d fen, WeChat Pay's limit for one sub-order.")
                % {"key": key, "max": wechatpay.MAX_SUB_ORDER_AMOUNT}
            )
    if item.get("subsidy_amount") is not None and item["subsidy_amount"] > item["amount"]:
        raise refuse(_("subsidy_amount is larger than amount."))
    if item.get("profit_sharing") is not None and not isinstance(item["profit_sharing"], bool):
        raise refuse(_("profit_sharing must be True or False."))
    given = {key: item[key] for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS) if item.get(key) is not None}
    sub_order = SubOrder(mchid=conf.mchid(), currency=wechatpay.CURRENCY, **{"out_trade_no": "", **given})
    # out_trade_no "" is generated when the sub-order is stored
    if not (isinstance(sub_order.sub_mchid, str) and sub_order.sub_mchid.isascii() and sub_order.sub_mchid.isdigit()):
        raise refuse(_("sub_mchid must be the sub-merchant's id (digits)."))
    try:
        sub_order.full_clean(
            exclude=["deduction"] if sub_order.out_trade_no else ["deduction", "out_trade_no"], validate_unique=False
        )
        if sub_order.sub_appid:  # the model leaves sub_appid free; WeChat Pay takes an AppID there
            _field_rule("sub_appid", appid_validator, sub_order.sub_appid)
    except ValidationError as exc:
        raise refuse("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())) from exc
    return sub_order


def clean_charge(number: object, risk_info: object, combine_appid: object) -> tuple[str | None, str, str | None]:
    """The deduction's own fields, checked: ``number`` and ``combine_appid`` None (or "") when not given."""
    risk_info = _text("risk_info", risk_info)
    if len(risk_info) > 255:
        raise ValidationError({"risk_info": _("risk_info must be text of at most 255 characters.")})
    if number is None or number == "":
        number = None
    else:
        number = _text("combine_out_trade_no", number)
        _field_rule("combine_out_trade_no", trade_no_validator, number)
    if combine_appid is None or combine_appid == "":
        combine_appid = None
    else:
        combine_appid = _text("combine_appid", combine_appid)
        _field_rule("combine_appid", appid_validator, combine_appid)
    return number, risk_info, combine_appid


def text_problem(value: object) -> str:
    """What keeps ``value`` from being a WeChat Pay text field ("" when nothing): not a str, a control
    character, a surrogate. Nothing is coerced: a dict or a number given for text is a mistake, not text."""
    if not isinstance(value, str):
        return _("give text, not %(type)s.") % {"type": type(value).__name__}
    found = NOT_TEXT.search(value)
    if found is None:
        return ""
    if "\ud800" <= found.group() <= "\udfff":
        return _("a lone surrogate (U+%(code)04X) is not text WeChat Pay can take.") % {"code": ord(found.group())}
    return _("control character U+%(code)04X is not allowed.") % {"code": ord(found.group())}


def _text(field: str, value: object) -> str:
    problem = text_problem(value)
    if problem:
        raise ValidationError({field: f"{field}: {problem}"})
    return cast(str, value)  # text_problem found it to be a str


def _field_rule(field: str, validator: Any, value: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


def why_not_chargeable(contract: Contract, now: datetime | None = None) -> Message | None:
    """Why ``contract`` cannot be charged now, None when it can: not signed, past its ``contract_expired_at``,
    or signed for another merchant than ``PAPAY["MCHID"]`` (WeChat Pay would refuse it, or charge the wrong
    one). A message: it may be stored on a deduction (``Not sent: …``)."""
    if contract.status != Contract.Status.SIGNED:
        return Message(
            gettext_noop("Contract %(code)s is %(status)s; only a signed contract can be charged."),
            code=contract.out_contract_code,
            status=Contract.Status(contract.status).label,
        )
    if contract.contract_expired_at is not None and contract.contract_expired_at <= (now or timezone.now()):
        return Message(
            gettext_noop("Contract %(code)s expired at %(time)s; an expired contract cannot be charged."),
            code=contract.out_contract_code,
            time=local_time(contract.contract_expired_at),
        )
    if contract.mchid and contract.mchid != conf.mchid():
        return Message(
            gettext_noop(
                "Contract %(code)s was signed with merchant %(theirs)s, not %(ours)s; it cannot be charged here."
            ),
            code=contract.out_contract_code,
            theirs=contract.mchid,
            ours=conf.mchid(),
        )
    return None

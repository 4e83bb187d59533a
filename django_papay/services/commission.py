"""The platform's commission: who a sub-order's share pays, from ``PAPAY["COMMISSION"]``, checked before sending.

``PAPAY["COMMISSION"]`` is a function ``(sub_order) -> list of receivers``; each receiver is a mapping
``{"type": "MERCHANT_ID" | "PERSONAL_OPENID", "account", "amount" (fen), "description", "name"?}``. The
default is none: no receivers, so sharing only finishes (unfreezes everything to the sub-merchant).

Whatever gives the receivers (the rule, or a caller of ``sharing.share``), they are refused with a
ValidationError — nothing stored or sent — when malformed, more than 50, or when with what was shared before
they exceed WeChat Pay's default cap of 30 % of the sub-order's amount (less what was refunded before sharing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .. import conf, wechatpay
from ..models import ProfitShare, ShareReceiver, ShareReturn, SubOrder
from .deduction_input import text_problem

RECEIVER_KEYS = frozenset({"type", "account", "amount", "description", "name"})
TEXT_LIMITS = {"account": 64, "description": 80, "name": 128}


def receivers_for(sub_order: SubOrder) -> list[Mapping[str, Any]]:
    """The receivers ``PAPAY["COMMISSION"]`` gives for ``sub_order``; [] when no rule is set."""
    rule = conf.commission()
    if rule is None:
        return []
    given = rule(sub_order)
    if given is None:
        return []
    if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, Sequence):
        raise ValidationError(
            _('PAPAY["COMMISSION"] must return a list of receivers, not %(type)s.') % {"type": type(given).__name__}
        )
    return list(given)


def share_cap(sub_order: SubOrder, refunded: int = 0) -> int:
    """The most that may be shared of ``sub_order`` in all, in fen: 30 % of what is left after refunds."""
    return max(0, sub_order.amount - refunded) * wechatpay.MAX_SHARE_PERCENT // 100


def already_shared(sub_order: SubOrder) -> int:
    """What earlier shares (not refused) pay out of ``sub_order``, less what was returned, in fen."""
    paid = sum(
        ShareReceiver.objects.filter(share__sub_order=sub_order, share__kind=ProfitShare.Kind.SHARE)
        .exclude(share__status=ProfitShare.Status.FAILED)
        .exclude(result=wechatpay.RECEIVER_CLOSED)
        .values_list("amount", flat=True)
    )
    returned = sum(
        ShareReturn.objects.filter(share__sub_order=sub_order, result=ShareReturn.Result.SUCCESS).values_list(
            "amount", flat=True
        )
    )
    return paid - returned


def clean_receivers(
    sub_order: SubOrder, receivers: Sequence[Mapping[str, Any]], *, refunded: int = 0
) -> list[ShareReceiver]:
    """Unsaved ShareReceivers for ``receivers``, checked; ValidationError naming the problem if not."""
    if isinstance(receivers, (str, bytes, Mapping)) or not isinstance(receivers, Sequence):
        raise ValidationError({"receivers": _("Give a list of receivers.")})
    if len(receivers) > wechatpay.MAX_SHARE_RECEIVERS:
        raise ValidationError(
            {"receivers": _("At most %(max)d receivers per share.") % {"max": wechatpay.MAX_SHARE_RECEIVERS}}
        )
    cleaned = [_clean(number, item) for number, item in enumerate(receivers, 1)]
    total = sum(receiver.amount for receiver in cleaned)
    if total > sub_order.amount:
        raise ValidationError(
            {
                "receivers": _("The receivers' %(total)d fen exceed the sub-order's %(amount)d fen.")
                % {"total": total, "amount": sub_order.amount}
            }
        )
    cap, before = share_cap(sub_order, refunded), already_shared(sub_order)
    if before + total > cap:
        raise ValidationError(
            {
                "receivers": _(
                    "Sharing %(total)d fen (%(before)d shared before) exceeds WeChat Pay's cap of %(percent)d %% "
                    "of the sub-order: %(cap)d fen."
                )
                % {"total": total, "before": before, "percent": wechatpay.MAX_SHARE_PERCENT, "cap": cap}
            }
        )
    return cleaned


def _clean(number: int, item: object) -> ShareReceiver:
    def refuse(message: str) -> ValidationError:
        return ValidationError(
            {"receivers": _("Receiver %(number)d: %(problem)s") % {"number": number, "problem": message}}
        )

    if not isinstance(item, Mapping):
        raise refuse(_("give a mapping with type, account, amount and description."))
    unknown = sorted(set(map(str, item)) - RECEIVER_KEYS)
    if unknown:
        raise refuse(_("unknown keys %(keys)s.") % {"keys": ", ".join(unknown)})
    missing = [key for key in ("type", "account", "amount", "description") if key not in item]
    if missing:
        raise refuse(_("%(keys)s missing.") % {"keys": ", ".join(missing)})
    if item["type"] not in wechatpay.RECEIVER_TYPES:
        raise refuse(_("type must be MERCHANT_ID or PERSONAL_OPENID."))
    amount = item["amount"]
    if type(amount) is not int or amount < 1:
        raise refuse(_("amount must be a whole number of fen, at least 1."))
    for key, limit in TEXT_LIMITS.items():
        value = item.get(key, "")
        problem = text_problem(value)
        if problem or len(value) > limit or (key != "name" and not value):
            raise refuse(problem or _("%(key)s must be 1 to %(limit)d characters.") % {"key": key, "limit": limit})
    if item["type"] == wechatpay.MERCHANT_ID and not (item["account"].isascii() and item["account"].isdigit()):
        raise refuse(_("a MERCHANT_ID account is a merchant id, digits only."))
    return ShareReceiver(
        type=item["type"],
        account=item["account"],
        amount=amount,
        description=item["description"],
        name=item.get("name", ""),
    )

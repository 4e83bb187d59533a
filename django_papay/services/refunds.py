"""Refund (平台收付通 退款): give money back on one sub-order of a charge, exactly once, and never over its amount.

WeChat Pay refunds an ``out_refund_no`` once however often it is sent ("同一退款单号多次请求只退一笔", and
"一笔退款失败后重新提交，请不要更换退款单号", spec "Refunds"), and its answer only means "accepted": the result
comes by notification (REFUND.*) or query. So, unlike a deduction:

1. everything is validated before anything is stored or sent (ValidationError, nothing stored);
2. the refund is stored under the sub-order's row lock, where the sum of its refunds that are not FAILED or
   CLOSED, this one included, is checked against the sub-order's amount (and at most 50 refunds): two staff
   refunding the last fen at once make one refund; it is committed before the call;
3. whoever claims the row (CREATED → PROCESSING, one conditional UPDATE) sends it; the same number again
   returns the stored refund and sends nothing;
4. an unknown outcome (no answer, 5xx, 429, an answer that does not verify or is not about this refund) and
   the refusals that pass with time (NOT_ENOUGH, FREQUENCY_LIMITED) leave it PROCESSING with the error shown:
   ``settle_refund`` queries it and, when WeChat Pay has no such refund, sends it again **with the same
   number** (never a new one). Only a refusal WeChat Pay signed makes it FAILED (nothing refunded).

``refund`` refuses to run inside ``transaction.atomic()`` (``InsideAtomicBlock``, see ``outside_atomic``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import conf, wechatpay
from ..exceptions import WeChatPayError
from ..models import NOT_REFUNDED, Deduction, Refund, SubOrder, refund_no_validator
from ..stored_messages import Message
from .deduction_input import text_problem
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .refund_records import accepted, record_error, refused
from .sharing_refunds import return_for_refund
from .turns import in_turn

logger = logging.getLogger("django_papay.refunds")


def refund(
    sub_order: SubOrder,
    amount: int,
    *,
    reason: str = "",
    out_refund_no: str | None = None,
    advance: bool = False,
) -> Refund:
    """Refund ``amount`` fen of ``sub_order`` (of a SUCCEEDED deduction) and return the Refund.

    A shared sub-order's shared money is returned first (``sharing_refunds.return_for_refund``); SharingStateError,
    refunding nothing, when it cannot be now. Raises only when nothing was sent: ValidationError for bad input, a
    sub-order that cannot be refunded,
    more than is left, a 51st refund, or an ``out_refund_no`` already used for another refund; and
    InsideAtomicBlock inside ``transaction.atomic()``. Whatever WeChat Pay answers, the refund comes back
    with its status: PROCESSING (accepted, or unknown: settle it), SUCCEEDED, or FAILED (refused, signed).
    """
    require_outside_atomic("refund")
    return send_refund(store_refund(sub_order, amount, reason=reason, out_refund_no=out_refund_no, advance=advance))


def store_refund(
    sub_order: SubOrder,
    amount: int,
    *,
    reason: str = "",
    out_refund_no: str | None = None,
    advance: bool = False,
) -> Refund:
    """Validate the refund and commit it, CREATED, without sending it (the first half of ``refund``).

    The same ``out_refund_no`` for the same sub-order and amount returns the refund stored before, whatever its
    status. Raises ValidationError as ``refund`` does.
    """
    if not isinstance(sub_order, SubOrder) or sub_order.pk is None:
        raise ValidationError({"sub_order": _("Give a saved SubOrder to refund.")})
    if type(amount) is not int or amount < 1:
        raise ValidationError(
            {
                "amount": _("amount must be a whole number of fen above 0 (3.00 yuan is 300), got %(value)r.")
                % {"value": amount}
            }
        )
    if type(advance) is not bool:
        raise ValidationError({"advance": _("advance must be True or False.")})
    problem = text_problem(reason)
    if problem or len(reason) > wechatpay.MAX_REFUND_REASON:
        raise ValidationError(
            {"reason": problem or _("reason is at most %(max)d characters.") % {"max": wechatpay.MAX_REFUND_REASON}}
        )
    if out_refund_no is not None:
        if not isinstance(out_refund_no, str):
            raise ValidationError({"out_refund_no": _("out_refund_no must be text.")})
        refund_no_validator(out_refund_no)
        existing = in_turn(lambda: _same_refund(out_refund_no, sub_order, amount))
        if existing is not None:
            return existing
    if not advance:  # 垫付 is the platform's money: nothing shared needs to come back for it
        # A shared sub-order's shared money comes back first (分账回退), as far as the refund needs it.
        return_for_refund(sub_order, amount)
    try:
        return in_turn(lambda: _create(sub_order, amount, reason, out_refund_no, advance))
    except IntegrityError:
        # A racing caller stored the same out_refund_no first: theirs, if it is this very refund.
        existing = _same_refund(out_refund_no, sub_order, amount) if out_refund_no else None
        if existing is None:
            raise
        return existing


def send_refund(refund: Refund) -> Refund:
    """Send a CREATED refund if we win its claim; otherwise return it as it is (someone else sent it).

    Never raises once the call is made: whatever happens to the answer, the refund is returned with it.
    """
    require_outside_atomic("send_refund")
    if not in_turn(lambda: _claim(refund)):
        logger.info("refund %s is %s already; not sent again here", refund, refund.status)
        return refund
    return apply(refund)


def apply(refund: Refund) -> Refund:
    """POST the apply for a claimed (PROCESSING) refund, with its own number, and store what came back.

    Used for the first send and for every re-send (``settle_refund``): the number never changes.
    """
    body = in_turn(lambda: payload(refund))  # reads the sub-order: on SQLite, in turn
    (result,) = send_all([Call("POST", wechatpay.REFUND_APPLY_PATH, body)])
    try:
        if isinstance(result, WeChatPayError):
            raise result
        accepted(refund, result)
    except WeChatPayError as exc:
        refused(refund, exc)
    except DatabaseError as exc:
        # The refund may have been made: never raise now. It stays PROCESSING and is settled by a query.
        logger.exception("refund %s: WeChat Pay's answer could not be stored", refund)
        record_error(refund, Message(gettext_noop("WeChat Pay's answer could not be stored: %(error)s"), error=exc))
    return refund


def payload(refund: Refund) -> dict[str, Any]:
    """The apply's body, from what was stored (the same bytes' worth on every re-send)."""
    sub_order = refund.sub_order
    body: dict[str, Any] = {"sub_mchid": sub_order.sub_mchid, "sp_appid": sub_order.deduction.combine_appid}
    if sub_order.sub_appid:
        body["sub_appid"] = sub_order.sub_appid
    # The sub-order's transaction_id when WeChat Pay gave one, else its out_trade_no (either one is enough).
    if sub_order.transaction_id:
        body["transaction_id"] = sub_order.transaction_id
    else:
        body["out_trade_no"] = sub_order.out_trade_no
    body["out_refund_no"] = refund.out_refund_no
    if refund.reason:
        body["reason"] = refund.reason
    body["amount"] = {"refund": refund.amount, "total": sub_order.amount, "currency": sub_order.currency}
    body["notify_url"] = conf.refund_notify_url() or conf.notify_url()
    if refund.advance:
        body["refund_account"] = wechatpay.REFUND_SOURCE_PARTNER_ADVANCE
    return body


def _claim(refund: Refund) -> bool:
    """CREATED → PROCESSING in one conditional UPDATE: whoever changes the row sends it, nobody else."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Refund.objects.filter(pk=refund.pk, status=Refund.Status.CREATED).update(
            status=Refund.Status.PROCESSING, sent_at=now, updated_at=now
        )
    refund.refresh_from_db()
    return bool(claimed)


def _create(sub_order: SubOrder, amount: int, reason: str, number: str | None, advance: bool) -> Refund:
    """Under the sub-order's row lock: the refundable amount and the 50 refunds checked, the row stored."""
    with transaction.atomic():
        if connection.vendor == "sqlite":
            # SQLite has no row locks: writing first takes its one write lock, so a second refunder waits.
            SubOrder.objects.filter(pk=sub_order.pk).update(amount=F("amount"))
        locked = SubOrder.objects.select_for_update().select_related("deduction").get(pk=sub_order.pk)
        existing = _same_refund(number, locked, amount) if number else None
        if existing is not None:  # stored by a racing caller while we waited for the lock: this very refund
            return existing
        if locked.deduction.status != Deduction.Status.SUCCEEDED:
            raise ValidationError(
                {
                    "sub_order": _("Deduction %(number)s is %(status)s; only a succeeded charge can be refunded.")
                    % {"number": locked.deduction, "status": locked.deduction.get_status_display()}
                }
            )
        paid_at = locked.success_time or locked.deduction.settled_at
        if paid_at is not None and timezone.now() - paid_at > wechatpay.REFUNDABLE_FOR:
            raise ValidationError(
                {
                    "sub_order": _("Sub-order %(number)s was paid over a year ago; WeChat Pay refunds no older order.")
                    % {"number": locked}
                }
            )
        counted = locked.refunds.exclude(status__in=NOT_REFUNDED)
        taken = counted.aggregate(total=Sum("amount"))["total"] or 0
        if taken + amount > locked.amount:
            raise ValidationError(
                {
                    "amount": _(
                        "Only %(left)d fen of sub-order %(number)s can still be refunded (of %(total)d); "
                        "%(amount)d asked."
                    )
                    % {"left": locked.amount - taken, "number": locked, "total": locked.amount, "amount": amount}
                }
            )
        if locked.refunds.exclude(status=Refund.Status.FAILED).count() >= wechatpay.MAX_REFUNDS:
            raise ValidationError(
                {
                    "sub_order": _("Sub-order %(number)s has %(max)d refunds, WeChat Pay's limit.")
                    % {"number": locked, "max": wechatpay.MAX_REFUNDS}
                }
            )
        refund = Refund(sub_order=locked, amount=amount, reason=reason, advance=advance)
        if number:
            refund.out_refund_no = number
        refund.full_clean(exclude=["sub_order"], validate_unique=False)
        refund.save()
    return refund


def _same_refund(number: str, sub_order: SubOrder, amount: int) -> Refund | None:
    """The refund stored under ``number`` if it is this one (sub-order and amount); ValidationError if another."""
    existing = Refund.objects.filter(out_refund_no=number).first()
    if existing is None:
        return None
    if existing.sub_order_id != sub_order.pk or existing.amount != amount:
        raise ValidationError(
            {
                "out_refund_no": _("out_refund_no %(number)s is already used for a different refund.")
                % {"number": number}
            }
        )
    return existing

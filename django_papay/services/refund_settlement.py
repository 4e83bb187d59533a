"""Settle what a refund left open: ask WeChat Pay, send it again with the same number, re-drive an ABNORMAL one.

For each PROCESSING refund ``settle_refund`` queries ``GET …/refunds/out-refund-no/{out_refund_no}?sub_mchid=``:

- SUCCESS → SUCCEEDED, ABNORMAL → ABNORMAL (staff see it; ``retry_abnormal_refund`` re-drives it),
  CLOSED / CLOSE → CLOSED, each signal once (``state.move_refund``); PROCESSING or a status we do not know is
  stored as it comes and the refund stays PROCESSING;
- 404, WeChat Pay has no such refund (never received, or refused NOT_ENOUGH): it is **sent again with the same
  number** — documented safe: "同一退款单号多次请求只退一笔" — never with a new one;
- anything else (no answer, 5xx, a bad signature, an answer not about this refund) is recorded and raised.

A CREATED refund (its sender died before the claim) is sent. Several hosts may settle at once: a query moves
nothing by itself, every move takes the row lock, and a re-send of the same number refunds once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import wechatpay
from ..exceptions import RefundStateError, WeChatPayError
from ..models import Refund
from ..stored_messages import error_columns
from .deductions import is_refusal
from .operations import Call, mismatch, send_all
from .outside_atomic import require_outside_atomic
from .refund_records import record_error, reported
from .refunds import apply, send_refund
from .turns import in_turn

logger = logging.getLogger("django_papay.refunds")

NOT_FOUND_CODES = frozenset({wechatpay.ORDER_NOT_EXIST, wechatpay.RESOURCE_NOT_EXISTS})


@dataclass(frozen=True)
class RefundSettled:
    """What settling did to one refund: ``error`` is None when WeChat Pay answered."""

    refund: Refund
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def settle_refund(refund: Refund) -> Refund:
    """Ask WeChat Pay about a PROCESSING refund and act on it (see the module docstring).

    Returns the refund (any status: a settled one is returned as it is). Raises WeChatPayError, after
    recording it, when WeChat Pay could not tell.
    """
    require_outside_atomic("settle_refund")
    (settled,) = settle_refunds([refund])
    if settled.error is not None:
        raise settled.error
    return settled.refund


def settle_refunds(refunds: Sequence[Refund]) -> list[RefundSettled]:
    """``settle_refund`` for each refund, one after another; never raises for one refund's error."""
    require_outside_atomic("settle_refunds")
    return [_settle(refund) for refund in refunds]


def _settle(refund: Refund) -> RefundSettled:
    in_turn(refund.refresh_from_db)
    if refund.status == Refund.Status.CREATED:
        send_refund(refund)
        return RefundSettled(refund)
    if refund.status != Refund.Status.PROCESSING:
        return RefundSettled(refund)
    (result,) = send_all([in_turn(lambda: _query(refund))])
    try:
        if isinstance(result, WeChatPayError):
            raise result
        reported(refund, result)
    except WeChatPayError as exc:
        if is_refusal(exc) and exc.status == 404 and exc.code in NOT_FOUND_CODES:
            logger.info("refund %s is not at WeChat Pay: sent again with the same number", refund)
            apply(refund)
            return RefundSettled(refund)
        record_error(refund, exc)
        return RefundSettled(refund, exc)
    return RefundSettled(refund)


def _query(refund: Refund) -> Call:
    path = wechatpay.path(wechatpay.REFUND_BY_NUMBER_PATH, out_refund_no=refund.out_refund_no)
    return Call("GET", f"{path}?sub_mchid={refund.sub_order.sub_mchid}")


def retry_abnormal_refund(refund: Refund) -> Refund:
    """Re-drive an ABNORMAL refund (the user's card closed or frozen) to the sub-merchant's bank account
    (``apply-abnormal-refund``); it is PROCESSING again until WeChat Pay reports the result.

    Raises RefundStateError when it is not ABNORMAL, and WeChatPayError, after recording it, when WeChat Pay
    did not accept (the refund stays ABNORMAL).
    """
    require_outside_atomic("retry_abnormal_refund")
    in_turn(refund.refresh_from_db)
    if refund.status != Refund.Status.ABNORMAL or not refund.refund_id:
        raise RefundStateError(
            _("Refund %(number)s is %(status)s; only an abnormal refund can be retried.")
            % {"number": refund.out_refund_no, "status": refund.get_status_display()}
        )
    sub_mchid = in_turn(lambda: refund.sub_order.sub_mchid)
    body = {
        "sub_mchid": sub_mchid,
        "out_refund_no": refund.out_refund_no,
        "type": wechatpay.ABNORMAL_REFUND_TYPE,
    }
    path = wechatpay.path(wechatpay.ABNORMAL_REFUND_PATH, refund_id=refund.refund_id)
    (result,) = send_all([Call("POST", path, body)])
    if isinstance(result, WeChatPayError):
        record_error(refund, result)
        raise result
    if result.data.get("out_refund_no") != refund.out_refund_no:
        exc = mismatch(result, "this refund", ["out_refund_no"])
        record_error(refund, exc)
        raise exc

    def redriven() -> None:
        with transaction.atomic():  # from ABNORMAL only: a REFUND.SUCCESS that came first stays
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.ABNORMAL).update(
                status=Refund.Status.PROCESSING, error_code="", **error_columns(""), updated_at=timezone.now()
            )

    in_turn(redriven)
    in_turn(refund.refresh_from_db)
    return refund


def advance_refund(refund: Refund) -> Refund:
    """Send a refund WeChat Pay refused NOT_ENOUGH again, with the same number, advanced by the platform (垫付:
    ``REFUND_SOURCE_PARTNER_ADVANCE``, which needs WeChat Pay's permission). Raises RefundStateError otherwise."""
    require_outside_atomic("advance_refund")
    in_turn(refund.refresh_from_db)

    def mark() -> int:
        with transaction.atomic():
            return Refund.objects.filter(
                pk=refund.pk, status=Refund.Status.PROCESSING, error_code=wechatpay.NOT_ENOUGH
            ).update(advance=True, updated_at=timezone.now())

    if not in_turn(mark):
        raise RefundStateError(
            _("Refund %(number)s was not refused NOT_ENOUGH; only such a refund is sent again as 垫付.")
            % {"number": refund.out_refund_no}
        )
    in_turn(refund.refresh_from_db)
    return apply(refund)

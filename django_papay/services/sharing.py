"""Profit sharing (分账): pay the platform its commission out of a frozen sub-order, then unfreeze the rest.

A sub-order charged with ``profit_sharing`` lands frozen in its sub-merchant's account (spec, "Profit
sharing"). ``share`` pays receivers (``PAPAY["COMMISSION"]`` when none are given) and, with ``finish``,
unfreezes the rest in the same request; ``finish_sharing`` only unfreezes. Either is a ``ProfitShare``,
committed with its ``out_order_no`` before it is sent.

**Idempotency.** "同一分账单号多次请求等同一次": the same ``out_order_no`` sent again is the same share. So an
outcome we cannot prove (no answer, a 429, a 5xx, an answer that does not verify) leaves the share PROCESSING
and it is sent again **with the same number** — by ``share`` called again, by ``settle_share``, by the task —
never as a second share. Only a refusal signed by WeChat Pay makes it FAILED. The finish-order call is taken
to follow the same rule [I: its out_order_no is documented as the merchant's number of that request].

Processing is asynchronous: a share is answered PROCESSING, its receivers PENDING; ``settle_share`` queries it
until FINISHED (signals ``share_finished``, ``share_failed``). A subsidised sub-order (``subsidy_amount``) has
its subsidy paid first (``subsidies.pay_subsidy``): WeChat Pay refuses to share it before. The sensitive
``receiver_name`` is encrypted (RSA-OAEP) under WeChat Pay's public key, or its newest platform certificate,
and the request names that key in ``Wechatpay-Serial``.

Money moves here: every call refuses to run inside ``transaction.atomic()`` (``outside_atomic``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf, crypto, wechatpay
from ..client import Answer
from ..exceptions import InvalidResponseError, SharingStateError, WeChatPayError
from ..models import Deduction, ProfitShare, ShareReceiver, SubOrder
from . import commission, share_records, state
from .certificate_store import certificate_keys
from .deductions import is_refusal
from .operations import Call, send_all
from .outside_atomic import require_outside_atomic
from .subsidies import pay_subsidy
from .turns import in_turn

logger = logging.getLogger("django_papay.sharing")

FINISH_DESCRIPTION = "完结分账"
NOT_FOUND_CODES = frozenset({wechatpay.RESOURCE_NOT_EXISTS, wechatpay.ORDER_NOT_EXIST})


def share(
    sub_order: SubOrder, receivers: Sequence[Mapping[str, Any]] | None = None, *, finish: bool = True
) -> ProfitShare:
    """Share ``sub_order`` with ``receivers`` (default: ``PAPAY["COMMISSION"]``'s), finishing it with ``finish``.

    An earlier share of it whose outcome is still open is sent again with its own number instead (and
    returned). The commission rule's receivers are paid once per sub-order: once a share of it succeeded,
    ``share(sub_order)`` without receivers only finishes, so a cron run after a manual share never takes the
    commission twice. With no receivers it only finishes (``finish_sharing``). Raises, having sent nothing for the
    share: ValidationError for bad or over-cap receivers, SharingStateError when it cannot be shared (its
    subsidy not paid yet too), InsideAtomicBlock. Never raises once the share is sent: the ProfitShare comes
    back PROCESSING, FINISHED or FAILED.
    """
    require_outside_atomic("share")
    open_share = _open(sub_order, ProfitShare.Kind.SHARE)
    if open_share is not None:
        return settle_share(open_share)
    check_shareable(sub_order)
    from_rule = receivers is None
    if from_rule and _shared_before(sub_order):
        if finish:
            return finish_sharing(sub_order)
        raise SharingStateError(
            _("The commission of %(number)s was shared already.") % {"number": sub_order.out_trade_no}
        )
    given = commission.receivers_for(sub_order) if receivers is None else receivers
    cleaned = commission.clean_receivers(sub_order, given, refunded=refunded_before_sharing(sub_order))
    if not cleaned:
        if finish:
            return finish_sharing(sub_order)
        raise SharingStateError(_("No receivers to share %(number)s with.") % {"number": sub_order.out_trade_no})
    if sub_order.subsidy_amount:
        subsidy = pay_subsidy(sub_order)
        if subsidy.result != subsidy.Result.SUCCESS:
            raise SharingStateError(
                _("The subsidy of %(number)s is %(result)s: it must arrive before the sub-order can be shared.")
                % {"number": sub_order.out_trade_no, "result": subsidy.get_result_display()}
            )
    return send_share(in_turn(lambda: _store(sub_order, cleaned, finish=finish, from_rule=from_rule)))


def finish_sharing(sub_order: SubOrder, description: str = FINISH_DESCRIPTION) -> ProfitShare:
    """完结分账: unfreeze what is left of ``sub_order`` to its sub-merchant; the FINISH ProfitShare.

    Raises SharingStateError (nothing sent) when it cannot be finished, or is finished already.
    """
    require_outside_atomic("finish_sharing")
    open_finish = _open(sub_order, ProfitShare.Kind.FINISH)
    if open_finish is None:
        check_shareable(sub_order)
        open_finish = in_turn(
            lambda: ProfitShare.objects.create(
                sub_order=sub_order, kind=ProfitShare.Kind.FINISH, finish=True, description=description[:80]
            )
        )
    return send_share(open_finish)


def send_share(share_: ProfitShare) -> ProfitShare:
    """Send a stored share or finish (again, with its own number, when its outcome was unknown)."""
    require_outside_atomic("send_share")
    if share_.status not in (ProfitShare.Status.CREATED, ProfitShare.Status.PROCESSING):
        return share_
    call = _request(share_)  # before it is marked sent: no key to encrypt a name with raises, nothing sent
    now = timezone.now()
    in_turn(
        lambda: ProfitShare.objects.filter(pk=share_.pk).update(
            status=ProfitShare.Status.PROCESSING, sent_at=now, updated_at=now
        )
    )
    in_turn(share_.refresh_from_db)
    (result,) = send_all([call])
    _outcome(share_, result, finished=share_.kind == ProfitShare.Kind.FINISH)
    return share_


def settle_share(share_: ProfitShare) -> ProfitShare:
    """Learn an open share's outcome: query it; one WeChat Pay never received is sent again, same number.

    A finish has no query of its own: it is sent again (the same number is the same request [I]).
    Returns the share with what WeChat Pay said; errors are recorded on it, never raised.
    """
    require_outside_atomic("settle_share")
    in_turn(share_.refresh_from_db)
    if share_.status not in (ProfitShare.Status.CREATED, ProfitShare.Status.PROCESSING):
        return share_
    if share_.status == ProfitShare.Status.CREATED or share_.kind == ProfitShare.Kind.FINISH:
        return send_share(share_)
    sub_order = share_.sub_order
    query = urlencode(
        {
            "sub_mchid": sub_order.sub_mchid,
            "transaction_id": sub_order.transaction_id,
            "out_order_no": share_.out_order_no,
        }
    )
    (result,) = send_all([Call("GET", f"{wechatpay.SHARE_ORDERS_PATH}?{query}")])
    if isinstance(result, WeChatPayError) and is_refusal(result) and result.code in NOT_FOUND_CODES:
        logger.info("share %s: WeChat Pay never received it; sent again with the same number", share_)
        return send_share(share_)
    _outcome(share_, result)
    return share_


def unshared_amount(sub_order: SubOrder) -> int:
    """What WeChat Pay says is still frozen in ``sub_order`` to share or unfreeze, in fen (``unsplit_amount``).

    Raises WeChatPayError when WeChat Pay could not tell, InvalidResponseError for an answer without it.
    """
    path = wechatpay.path(wechatpay.UNSPLIT_AMOUNT_PATH, transaction_id=sub_order.transaction_id)
    (result,) = send_all([Call("GET", path)])
    if isinstance(result, WeChatPayError):
        raise result
    amount = result.data.get("unsplit_amount")
    if type(amount) is not int or amount < 0:
        raise InvalidResponseError(
            "the answer carries no unsplit_amount",
            code="ANSWER_MISMATCH",
            status=result.status,
            request_id=result.request_id,
        )
    return amount


def check_shareable(sub_order: SubOrder) -> None:
    """SharingStateError unless ``sub_order`` was charged with profit_sharing, paid, and is not finished."""
    problem = why_not_shareable(sub_order)
    if problem:
        raise SharingStateError(problem)


def why_not_shareable(sub_order: SubOrder) -> str:
    """Why ``sub_order`` cannot be shared or finished now; "" when it can."""
    number = sub_order.out_trade_no
    if not sub_order.profit_sharing:
        return _("Sub-order %(number)s was not charged with profit_sharing; it can never be shared.") % {
            "number": number
        }
    if sub_order.deduction.status != Deduction.Status.SUCCEEDED or not sub_order.transaction_id:
        return _("Sub-order %(number)s is not paid; only a paid sub-order can be shared.") % {"number": number}
    if ProfitShare.objects.filter(sub_order=sub_order, finish=True, status=ProfitShare.Status.FINISHED).exists():
        return _("Sharing of sub-order %(number)s is finished; its funds are unfrozen.") % {"number": number}
    return ""


def refunded_before_sharing(sub_order: SubOrder) -> int:
    """What is refunded (or being refunded) of ``sub_order``, in fen: it comes out of the frozen funds, so the
    30 % cap counts from what is left."""
    return sub_order.amount - sub_order.refundable_amount


def sensitive_key() -> tuple[str, rsa.RSAPublicKey]:
    """``(Wechatpay-Serial, key)`` that sensitive fields are encrypted under: the configured WeChat Pay public
    key, else the newest stored platform certificate. ImproperlyConfigured-free: SharingStateError if none."""
    public_keys = conf.wechatpay_public_keys()
    if public_keys:
        return next(iter(public_keys.items()))
    stored = certificate_keys()
    if not stored:
        raise SharingStateError(_("No WeChat Pay key to encrypt receiver_name with; refresh the certificates."))
    return list(stored.items())[-1]


def _request(share_: ProfitShare) -> Call:
    sub_order = share_.sub_order
    if share_.kind == ProfitShare.Kind.FINISH:
        payload = {
            "sub_mchid": sub_order.sub_mchid,
            "transaction_id": sub_order.transaction_id,
            "out_order_no": share_.out_order_no,
            "description": share_.description or FINISH_DESCRIPTION,
        }
        return Call("POST", wechatpay.FINISH_ORDER_PATH, payload)
    receivers = list(share_.receivers.all())
    serial = None
    items = []
    for receiver in receivers:
        item: dict[str, Any] = {
            "type": receiver.type,
            "receiver_account": receiver.account,
            "amount": receiver.amount,
            "description": receiver.description,
        }
        if receiver.name:
            serial, key = sensitive_key()
            item["receiver_name"] = crypto.encrypt_sensitive(key, receiver.name)  # fresh ciphertext each time
        items.append(item)
    body: dict[str, Any] = {}
    if any(receiver.type == wechatpay.PERSONAL_OPENID for receiver in receivers):
        body["appid"] = sub_order.deduction.combine_appid  # required for an openid receiver
    body["sub_mchid"] = sub_order.sub_mchid
    body["transaction_id"] = sub_order.transaction_id
    body["out_order_no"] = share_.out_order_no
    body["receivers"] = items
    body["finish"] = share_.finish
    return Call("POST", wechatpay.SHARE_ORDERS_PATH, body, wechatpay_serial=serial)


def _outcome(share_: ProfitShare, result: Answer | WeChatPayError, *, finished: bool = False) -> None:
    if isinstance(result, WeChatPayError):
        if is_refusal(result):
            share_records.fail(share_, result)
        else:
            share_records.record_error(share_, result)
        logger.warning("share %s: %s", share_, result)
        return
    try:
        share_records.apply_answer(share_, result, finished=finished)
    except WeChatPayError as exc:
        share_records.record_error(share_, exc)


def _open(sub_order: SubOrder, kind: str) -> ProfitShare | None:
    """An earlier share (or finish) of ``sub_order`` whose outcome is still open: it is sent again, not anew."""
    return in_turn(
        lambda: (
            ProfitShare.objects.filter(sub_order=sub_order, kind=kind, status__in=state.OPEN_SHARE_STATES)
            .order_by("pk")
            .first()
        )
    )


def _shared_before(sub_order: SubOrder) -> bool:
    return ProfitShare.objects.filter(
        sub_order=sub_order, kind=ProfitShare.Kind.SHARE, status=ProfitShare.Status.FINISHED
    ).exists()


def _store(sub_order: SubOrder, receivers: list[ShareReceiver], *, finish: bool, from_rule: bool) -> ProfitShare:
    """Commit the share under the sub-order's row lock. Two callers racing (a task and staff, two cron hosts)
    make one share: the second finds the first's (open, or — for the commission rule — any not refused) and
    returns it, to be sent again under its number."""
    with transaction.atomic():
        SubOrder.objects.select_for_update().filter(pk=sub_order.pk).first()
        earlier = ProfitShare.objects.filter(sub_order=sub_order, kind=ProfitShare.Kind.SHARE)
        earlier = (
            earlier.exclude(status=ProfitShare.Status.FAILED)
            if from_rule
            else earlier.filter(status__in=state.OPEN_SHARE_STATES)
        )
        found = earlier.order_by("pk").first()
        if found is not None:
            return found
        stored = ProfitShare.objects.create(sub_order=sub_order, kind=ProfitShare.Kind.SHARE, finish=finish)
        for receiver in receivers:
            receiver.share = stored
        ShareReceiver.objects.bulk_create(receivers)
    return stored

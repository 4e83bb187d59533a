"""Refunding a sub-order that was shared: the shared money comes back first (分账回退), then the refund.

WeChat Pay refunds from the sub-merchant's account, and after sharing "return the shared money first, then
refund" [C, FAQ]. So before a refund of a profit-sharing sub-order is stored, ``return_for_refund`` returns
from its finished shares' MERCHANT_ID receivers (the platform, usually) as much as the refund needs: what the
sub-merchant keeps of the sub-order (its amount and subsidy, less what stays shared, less earlier refunds) must
cover every refund. A partial refund the sub-merchant's part covers returns nothing: the commission stays.

Shares whose outcome is open are settled first. If the money cannot be returned now — a return refused or not
known yet, a share still processing, receivers that cannot return (PERSONAL_OPENID) — ``SharingStateError``
says why and nothing is refunded; the refund may be asked again once it is settled (returns are idempotent).
A refund before any sharing needs nothing here: it comes out of the frozen funds, and reduces what may be
shared (``commission.share_cap``).
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from .. import wechatpay
from ..exceptions import SharingStateError
from ..models import ProfitShare, ShareReturn, SubOrder, Subsidy
from . import state
from .commission import already_shared
from .share_returns import return_share, returnable, settle_return
from .sharing import settle_share
from .turns import in_turn

logger = logging.getLogger("django_papay.sharing")


def held_by_sub_merchant(sub_order: SubOrder) -> int:
    """What the sub-merchant keeps of ``sub_order`` now, in fen: amount + subsidy − shared − refunds (not failed)."""
    subsidy = sum(
        Subsidy.objects.filter(sub_order=sub_order, result=Subsidy.Result.SUCCESS).values_list("amount", flat=True)
    )
    refunded = sub_order.amount - sub_order.refundable_amount
    return sub_order.amount + subsidy - already_shared(sub_order) - refunded


def return_for_refund(sub_order: SubOrder, amount: int) -> list[ShareReturn]:
    """Return (分账回退) what a refund of ``amount`` fen needs of ``sub_order``'s shared money; the returns made.

    Raises SharingStateError, refunding nothing, when it cannot be returned now.
    """
    if not sub_order.profit_sharing:
        return []
    shares = list(in_turn(lambda: ProfitShare.objects.filter(sub_order=sub_order, kind=ProfitShare.Kind.SHARE)))
    for share in shares:
        if share.status in state.OPEN_SHARE_STATES:
            settle_share(share)
    for open_return in in_turn(
        lambda: list(ShareReturn.objects.filter(share__sub_order=sub_order, result__in=("created", "processing")))
    ):
        settle_return(open_return)
    need = amount - held_by_sub_merchant(sub_order)
    if need <= 0:
        return []
    still_open = [share for share in shares if share.status in state.OPEN_SHARE_STATES]
    if still_open:
        raise SharingStateError(
            _("Share %(number)s of sub-order %(sub_order)s is still processing; refund once it is settled.")
            % {"number": still_open[0].out_order_no, "sub_order": sub_order.out_trade_no}
        )
    made = []
    for share in sorted(shares, key=lambda s: s.pk, reverse=True):  # the newest share first
        if share.status != ProfitShare.Status.FINISHED:
            continue
        accounts = dict.fromkeys(share.receivers.filter(type=wechatpay.MERCHANT_ID).values_list("account", flat=True))
        for account in accounts:
            take = min(need, returnable(share, account))
            if take <= 0:
                continue
            returned = return_share(share, take, return_mchid=account)
            made.append(returned)
            if returned.result != ShareReturn.Result.SUCCESS:
                raise SharingStateError(
                    _("Return %(number)s of the shared money is %(result)s; the refund waits for it (%(error)s).")
                    % {
                        "number": returned.out_return_no,
                        "result": returned.get_result_display(),
                        "error": returned.error_display() or "-",
                    }
                )
            need -= take
            if need <= 0:
                logger.info("sub-order %s: shared money returned before its refund", sub_order)
                return made
    raise SharingStateError(
        _(
            "%(need)d fen of sub-order %(number)s's shared money cannot be returned (only MERCHANT_ID receivers of "
            "finished shares can return), so it cannot be refunded."
        )
        % {"need": need, "number": sub_order.out_trade_no}
    )

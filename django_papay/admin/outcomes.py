"""What staff are told about a deduction: one sentence in their language, and the message level its status asks for."""

from __future__ import annotations

from django.contrib import messages
from django.utils.translation import gettext as _

from ..models import Deduction
from .columns import yuan

# The level of a message about a deduction in each status.
LEVELS: dict[str, int] = {
    Deduction.Status.SUCCEEDED: messages.SUCCESS,
    Deduction.Status.PROCESSING: messages.WARNING,
    Deduction.Status.CREATED: messages.WARNING,
    Deduction.Status.FAILED: messages.ERROR,
    Deduction.Status.REVERSED: messages.WARNING,
}


def describe(deduction: Deduction, note: str = "") -> str:
    """``Deduction … (contract …, ¥15.00): succeeded — transaction …``, with what happens next when it is open.

    ``note``: what settling found happens next (``Settled.note``: not received yet, failed after when), said
    instead of "not known yet".
    """
    numbers = ", ".join(filter(None, deduction.sub_orders.values_list("transaction_id", flat=True)))
    text = _("Deduction %(number)s (contract %(code)s, %(total)s): %(status)s") % {
        "number": deduction,
        "code": deduction.contract,
        "total": yuan(deduction.total_amount),
        "status": deduction.get_status_display(),
    }
    if deduction.status == Deduction.Status.SUCCEEDED and numbers:
        text += " — " + _("transaction %(ids)s") % {"ids": numbers}
    elif deduction.status == Deduction.Status.PROCESSING and note:
        return f"{text} — {note}"
    elif deduction.status == Deduction.Status.PROCESSING:
        text += " — " + _("the outcome is not known yet; it will be settled by asking WeChat Pay (papay_settle)")
    if deduction.last_error and deduction.status != Deduction.Status.SUCCEEDED:
        text += f" ({deduction.error_display()})"
    return text

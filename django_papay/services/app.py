"""Self-service signing from the App: the user's contract for a plan, its pre-sign within a budget, its state.

The App's endpoints (``app_api.py``) call these for the signed-in user; the rules that make them safe live here:

- **One contract per user and plan.** ``AppSigning`` (unique on user and plan) points at it; a terminated one is
  replaced by a new contract on the next tap.
- **One pre-sign at a time.** The ``AppSigning`` row is locked while the pre-sign is sent, so a second tap waits
  and then answers the session the first one opened. A live session is always answered rather than replaced:
  each pre-sign is a call to WeChat Pay.
- **A budget per user**, in the database so it holds across processes and hosts: each pre-sign sent is a
  ``PresignAttempt``, claimed (committed) *before* it is counted. Whichever of several simultaneous claims counts
  last sees them all, so no more than the limit ever pass (at the very edge, taps at the same instant may all be
  refused: the safe side). Call these outside a transaction: a claim not yet committed is invisible to the others.
- **Refresh, throttled.** "Am I signed?" may ask WeChat Pay (``query``) when the notification is late, at most
  once per ``APP_REFRESH_INTERVAL`` per contract, claimed by a conditional update of ``queried_at``.
- **Nothing half-stored.** A WeChat Pay error leaves the contract without a session, retryable, the error
  recorded on it (``last_error``) and on the attempt.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf
from ..exceptions import PapayError, WeChatPayError
from ..models import AppSigning, Contract, PresignAttempt
from .contracts import PRESIGN_BY_CHANNEL, query
from .operations import run

DISPLAY_ACCOUNT_MAX = 32  # contract_display_account is string(32) at WeChat Pay


class PresignBudgetSpent(PapayError):
    """The user has made the server send ``PAPAY["APP_PRESIGN_LIMIT"]`` pre-signs lately; ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"pre-sign budget spent; try again in {retry_after} s")
        self.retry_after = retry_after


# --- the contract's display account -------------------------------------------------------------


def masked_username(user: Any) -> str:
    """The default ``PAPAY["DISPLAY_ACCOUNT"]``: the username with its middle masked (``138****8888``, ``a***e``)."""
    name = str(user.get_username())
    if len(name) == 11 and name.isdigit():  # a mobile number, masked the way Chinese apps do
        return f"{name[:3]}****{name[-4:]}"
    if len(name) <= 2:
        return (name[:1] or "*") + "*"
    keep = min(max(1, len(name) // 4), 12)  # at most 12 + 4 + 12 characters: within WeChat Pay's 32
    return name[:keep] + "*" * min(len(name) - 2 * keep, 4) + name[-keep:]


def display_account(user: Any) -> str:
    """``PAPAY["DISPLAY_ACCOUNT"](user)``, checked against WeChat Pay's rule (1 to 32 characters)."""
    value = conf.display_account()(user)
    if not isinstance(value, str) or not 0 < len(value) <= DISPLAY_ACCOUNT_MAX:
        # The value itself is left out of the message: it is about a person.
        length = len(value) if isinstance(value, str) else type(value).__name__
        raise ImproperlyConfigured(
            f'settings.PAPAY["DISPLAY_ACCOUNT"] gave {length} for user {user.pk}; WeChat Pay takes a '
            f"contract_display_account of 1 to {DISPLAY_ACCOUNT_MAX} characters."
        )
    return value


# --- the user's contract for a plan ----------------------------------------------------------------


def contract_for(user: Any, plan_id: int) -> Contract:
    """The user's current contract for ``plan_id``, found or created (once, however many taps race)."""
    return _signing(user, plan_id).contract


def _signing(user: Any, plan_id: int) -> AppSigning:
    found = AppSigning.objects.select_related("contract").filter(user=user, plan_id=plan_id).first()
    if found is not None:
        return found
    # A contract made for this user elsewhere (by staff, say) is adopted rather than doubled.
    adopted = (
        Contract.objects.filter(user=user, plan_id=plan_id, app_signing__isnull=True)
        .exclude(status=Contract.Status.TERMINATED)
        .order_by("-created_at", "-pk")
        .first()
    )
    try:
        with transaction.atomic():
            contract = adopted or _new_contract(user, plan_id)
            return AppSigning.objects.create(user=user, plan_id=plan_id, contract=contract)
    except IntegrityError:  # another tap created it first: the constraint kept it to one
        return AppSigning.objects.select_related("contract").get(user=user, plan_id=plan_id)


def _new_contract(user: Any, plan_id: int) -> Contract:
    return Contract.objects.create(user=user, plan_id=plan_id, contract_display_account=display_account(user))


def _answerable(contract: Contract) -> bool:
    """Whether the contract's state is the answer as it stands: signed, or a session the App can still open."""
    return contract.status == Contract.Status.SIGNED or contract.presign_session_is_live()


# --- pre-sign -------------------------------------------------------------------------------------


def presign_for_user(user: Any, plan_id: int, channel: str = Contract.Channel.APP) -> Contract:
    """The user's contract for ``plan_id`` with a live signing session, or its signed state.

    A live session is answered as it is (whichever channel opened it: ``presign_channel`` says); otherwise a
    pre-sign is sent on ``channel`` within the user's budget. Raises PresignBudgetSpent (nothing sent),
    WeChatPayError (recorded on the contract, which stays retryable), ValidationError or ImproperlyConfigured.
    """
    signing = _signing(user, plan_id)
    if _answerable(signing.contract):  # most taps: nothing to send, no budget spent
        return signing.contract
    attempt = claim_presign(user)
    contract, sent, error = signing.contract, False, None
    try:
        with transaction.atomic():
            locked = AppSigning.objects.select_for_update().select_related("contract").get(pk=signing.pk)
            contract = _current_contract(locked)
            if not _answerable(contract):  # else another tap won while we waited for the lock
                try:
                    run(PRESIGN_BY_CHANNEL[Contract.Channel(channel)], contract)
                except WeChatPayError as exc:  # recorded on the contract by run(); committed with it below
                    error = exc
                sent = True
    finally:
        if sent:
            PresignAttempt.objects.filter(pk=attempt.pk).update(contract=contract, error=str(error or ""))
        else:  # nothing went to WeChat Pay (another tap's session, or refused before sending): budget given back
            attempt.delete()
    if error is not None:
        raise error
    return contract


def _current_contract(signing: AppSigning) -> Contract:
    """The locked signing's contract; a terminated one is replaced by a new contract (a user may sign again)."""
    if signing.contract.status == Contract.Status.TERMINATED:
        signing.contract = _new_contract(signing.user, signing.plan_id)
        signing.save(update_fields=["contract", "updated_at"])
    return signing.contract


def claim_presign(user: Any) -> PresignAttempt:
    """Claim one pre-sign from the user's budget, or raise PresignBudgetSpent with when to try again."""
    limit, seconds = conf.app_presign_limit()
    now = timezone.now()
    since = now - timedelta(seconds=seconds)
    PresignAttempt.objects.filter(user=user, created_at__lte=since).delete()
    attempt = PresignAttempt.objects.create(user=user, created_at=now)  # committed before it is counted
    recent = PresignAttempt.objects.filter(user=user, created_at__gt=since)
    if recent.count() <= limit:
        return attempt
    oldest = recent.exclude(pk=attempt.pk).order_by("created_at").values_list("created_at", flat=True).first()
    attempt.delete()
    retry_after = (oldest or now) + timedelta(seconds=seconds) - now
    raise PresignBudgetSpent(max(1, math.ceil(retry_after.total_seconds())))


# --- state ----------------------------------------------------------------------------------------


def users_contract(user: Any, out_contract_code: str) -> Contract | None:
    """The contract with that code if it is ``user``'s, else None (whether it exists is nobody else's business)."""
    return Contract.objects.filter(user=user, out_contract_code=out_contract_code).first()


def refresh(contract: Contract) -> bool:
    """Ask WeChat Pay about a pre-signed contract (its notification may be late); True when it was asked.

    At most once per ``PAPAY["APP_REFRESH_INTERVAL"]`` per contract, whoever asks and on whichever host: the
    conditional update of ``queried_at`` lets one request through. Raises WeChatPayError when the query fails.
    """
    if contract.status != Contract.Status.PRESIGNED:
        return False
    now = timezone.now()
    due = Q(queried_at__isnull=True) | Q(queried_at__lte=now - timedelta(seconds=conf.app_refresh_interval()))
    if not Contract.objects.filter(due, pk=contract.pk, status=Contract.Status.PRESIGNED).update(queried_at=now):
        contract.refresh_from_db()
        return False
    query(contract)
    return True

"""What the app does with WeChat Pay. Services own the transaction and lock boundaries.

- ``presign`` / ``presign_mini_program`` / ``query`` / ``terminate`` — a contract at WeChat Pay
  (``services/contracts.py``).
- ``receive_notification`` / ``reprocess_notification`` — the notify pipeline: verify, type the event, apply
  it through its family's handler exactly once (``services/notifications.py``; SIGN and TERMINATE today).
- ``deduct`` — charge a signed contract, exactly once (``services/deductions.py``); ``settle`` /
  ``settle_many`` / ``reverse_deduction`` — resolve what a charge left open (``services/settlement.py``).
- ``share`` / ``finish_sharing`` / ``settle_share`` / ``unshared_amount`` — profit sharing (分账): the platform's
  commission (``PAPAY["COMMISSION"]``, ``services/commission.py``), then the rest unfrozen
  (``services/sharing.py``); ``return_share`` (分账回退, ``services/share_returns.py``); ``pay_subsidy`` (补差,
  ``services/subsidies.py``).
- ``refund`` — give money back on one sub-order, exactly once (``services/refunds.py``); ``settle_refund`` /
  ``settle_refunds`` / ``retry_abnormal_refund`` / ``advance_refund`` — resolve what a refund left open
  (``services/refund_settlement.py``); REFUND.* notifications are the refund family (``notify_refunds.py``).
- ``reconcile`` — one Beijing day against WeChat Pay's trade bill: fetch, read, match, settle what a query can,
  the day's ``Reconciliation`` (``services/reconciliation.py``; ``bills``, ``bill_parse``, ``bill_match``).
- ``Charge`` / ``Planned`` — a billing run's charges and what became of them (``services/billing.py``: every
  charge stored first, then each sent once); ``dispatch.deduct_many`` is the entry point, since whether the
  workers send the run (``PAPAY["TASKS"]``) is decided above the services. ``services/ratelimit.py`` shares
  ``MAX_CALLS_PER_SECOND`` across hosts.
- ``run_many`` — any of the operations above for many contracts, calls in flight concurrently
  (``services/operations.py``).
- ``app.presign_for_user`` / ``app.refresh`` — the App's self-service signing for one user: one contract per
  user and plan, a pre-sign budget, a throttled query (``services/app.py``; the views are ``app_api.py``).
- ``refresh_certificates`` — download the platform certificates (``services/certificates.py``);
  ``services/connections.py`` builds the API client with the keys it verifies answers with.
Nothing here enqueues a task: the edges ask ``dispatch`` (enqueue with ``PAPAY["TASKS"]``, or run here).
State moves go through ``services/state.py`` whoever reports them.
"""

from .billing import Charge, Planned
from .certificates import refresh_certificates
from .contracts import (
    PRESIGN,
    PRESIGN_BY_CHANNEL,
    PRESIGN_MINI_PROGRAM,
    QUERY,
    check_can_presign,
    expire_presigns,
    launch_parameters,
    presign,
    presign_mini_program,
    presign_payload,
    query,
    terminate,
    terminate_operation,
)
from .deductions import deduct
from .notifications import receive_notification, reprocess_notification
from .operations import Outcome, record_failure, run_many
from .reconciliation import reconcile
from .refund_settlement import RefundSettled, advance_refund, retry_abnormal_refund, settle_refund, settle_refunds
from .refunds import refund
from .settlement import Settled, reverse_deduction, settle, settle_many
from .share_returns import return_share, settle_return
from .sharing import finish_sharing, settle_share, share, unshared_amount
from .subsidies import pay_subsidy

__all__ = [
    "PRESIGN",
    "PRESIGN_BY_CHANNEL",
    "PRESIGN_MINI_PROGRAM",
    "QUERY",
    "Charge",
    "Outcome",
    "Planned",
    "RefundSettled",
    "Settled",
    "advance_refund",
    "check_can_presign",
    "deduct",
    "expire_presigns",
    "finish_sharing",
    "launch_parameters",
    "pay_subsidy",
    "presign",
    "presign_mini_program",
    "presign_payload",
    "query",
    "receive_notification",
    "reconcile",
    "record_failure",
    "refresh_certificates",
    "refund",
    "reprocess_notification",
    "retry_abnormal_refund",
    "return_share",
    "reverse_deduction",
    "run_many",
    "settle",
    "settle_many",
    "settle_refund",
    "settle_refunds",
    "settle_return",
    "settle_share",
    "share",
    "terminate",
    "terminate_operation",
    "unshared_amount",
]

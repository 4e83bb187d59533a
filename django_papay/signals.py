"""Signals for business code. The contract signals are sent once per state change, inside the transaction that
makes it, whoever reported the change: a notification, or ``query``/``terminate``/``papay_sync``. A receiver that
raises rolls the change back; for a notification, WeChat Pay then delivers it again later. The deduction
and refund signals are sent after their move is committed (below).

    @receiver(contract_signed)
    def start_membership(sender, contract, notification, **kwargs): ...
"""

from django.dispatch import Signal

# sender=Contract; kwargs: contract (Contract), notification (the Notification that reported the change,
# or None when a query or terminate call did)
contract_signed = Signal()
contract_terminated = Signal()

# sender=Deduction; kwargs: deduction (Deduction). Once per move, sent after the move is committed (the money
# has moved by then: a receiver that raises is logged and undoes nothing): succeeded when every sub-order was
# paid; failed when WeChat Pay refused it, never received it, or it was reversed (see deduction.status). A
# failed or reversed deduction that a later signed answer shows charged sends succeeded with corrected_from
# (the status it had).
deduction_succeeded = Signal()
deduction_failed = Signal()

# sender=ProfitShare; kwargs: share (ProfitShare). Sent after the move is committed, once: finished when WeChat
# Pay reports the share (or finish) FINISHED — each receiver's result says whether it was paid; failed when
# WeChat Pay refused it with a signed answer.
share_finished = Signal()
share_failed = Signal()
# sender=Reconciliation; kwargs: reconciliation (Reconciliation, status DISCREPANCIES, its discrepancies stored).
# Once per run that found any difference with WeChat Pay's bill, sent after the report is committed; a receiver
# that raises is logged.
reconciliation_discrepancy = Signal()
# sender=Refund; kwargs: refund (Refund), notification (the Notification that reported it, or None when a query
# or the apply's answer did). Sent after the move is committed, to every receiver (one that raises is logged
# and undoes nothing), at most once each per refund: succeeded when WeChat Pay refunded it; failed the first
# time it is ABNORMAL (the user's account cannot take it: staff act), CLOSED, or FAILED (WeChat Pay refused it,
# nothing refunded) — see refund.status.
refund_succeeded = Signal()
refund_failed = Signal()

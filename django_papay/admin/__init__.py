"""The staff's edge: one module per model's admin, registered here.

- ``contracts.py`` — contracts: WeChat Pay's state at a glance, and the calls staff may make.
- ``notification_log.py`` — every delivery to the notify view, read-only, with reprocess for failed ones.
- ``deductions.py`` — charges: what was charged, settle and reverse.
- ``charge.py`` — the contracts' ``deduct`` action: the page that asks for the sub-order, then the charges.
- ``sharing.py`` — profit sharing: frozen / shared / finished, the shares on each sub-order, share and finish.
- ``outcomes.py`` — what staff are told about a deduction, and at which message level.
- ``columns.py`` — what the admins share: times, yuan, status badges, short errors, ``ReadOnlyMixin``.
- ``large_tables.py`` — changelists that stay fast on a platform's data (estimated counts, exact search).
- ``confirmation.py`` — the page staff confirm a WeChat Pay call on.
- ``refunds.py`` — refunds: what was given back, settle, 垫付, retry abnormal; the deductions' ``refund`` action
  (its ``DeductionAdmin`` is the deductions' admin with their refunds: the one registered).
- ``certificates.py`` — the stored platform certificates, read-only.
- ``billing.py`` — billing runs (deductions sent by tasks): their progress per status.
- ``reconciliation.py`` — each day against WeChat Pay's bill: totals, discrepancies, a CSV export.
- ``queueing.py`` — with ``PAPAY["TASKS"]``: actions that enqueue, and the queued / in flight filters.
"""

from django.contrib import admin

from ..models import (
    BillingRun,
    Contract,
    Deduction,
    Notification,
    PlatformCertificate,
    ProfitShare,
    Reconciliation,
    Refund,
)
from .billing import BillingRunAdmin
from .certificates import PlatformCertificateAdmin
from .contracts import ContractAdmin
from .notification_log import NotificationAdmin
from .reconciliation import ReconciliationAdmin
from .refunds import DeductionAdmin, RefundAdmin
from .sharing import ProfitShareAdmin

admin.site.register(Contract, ContractAdmin)
admin.site.register(Deduction, DeductionAdmin)
admin.site.register(Refund, RefundAdmin)
admin.site.register(Notification, NotificationAdmin)
admin.site.register(PlatformCertificate, PlatformCertificateAdmin)
admin.site.register(BillingRun, BillingRunAdmin)
admin.site.register(ProfitShare, ProfitShareAdmin)
admin.site.register(Reconciliation, ReconciliationAdmin)

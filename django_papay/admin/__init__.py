"""The staff's edge: one module per model's admin, registered here.

- ``contracts.py`` — contracts: WeChat Pay's state at a glance, and the calls staff may make.
- ``notification_log.py`` — every delivery to the notify view, read-only, with reprocess for failed ones.
- ``deductions.py`` — charges: what was charged, settle and reverse; the contracts' ``deduct`` action.
- ``certificates.py`` — the stored platform certificates, read-only.
"""

from django.contrib import admin

from ..models import Contract, Deduction, Notification, PlatformCertificate
from .certificates import PlatformCertificateAdmin
from .contracts import ContractAdmin
from .deductions import DeductionAdmin
from .notification_log import NotificationAdmin

admin.site.register(Contract, ContractAdmin)
admin.site.register(Deduction, DeductionAdmin)
admin.site.register(Notification, NotificationAdmin)
admin.site.register(PlatformCertificate, PlatformCertificateAdmin)

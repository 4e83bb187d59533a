"""The app's models, one module per concern; everything is importable from ``django_papay.models``.

- ``contracts.py`` — ``Contract``: the merchant's record of each 合单代扣 contract.
- ``notifications.py`` — ``Notification``: every delivery to the notify view, stored before it is trusted.
- ``certificates.py`` — ``PlatformCertificate`` and ``CertificateRefresh``.
- ``deductions.py`` — ``Deduction`` and its ``SubOrder``s: the charges of signed contracts.
- ``app.py`` — ``AppSigning`` and ``PresignAttempt``: users signing from the App, and their pre-sign budget.
- ``billing.py`` — ``BillingRun`` (deductions sent by tasks) and ``CallWindow`` (the shared call rate).
- ``reconciliation.py`` — ``Reconciliation`` (one day's bill against our records) and its ``Discrepancy`` rows.
"""

from .app import AppSigning, PresignAttempt
from .billing import BillingRun, CallWindow
from .certificates import CertificateRefresh, PlatformCertificate
from .contracts import Contract, appid_validator, new_out_contract_code, out_contract_code_validator
from .deductions import Deduction, SubOrder, new_trade_no, trade_no_validator
from .notifications import Notification, storable
from .reconciliation import Discrepancy, Reconciliation

__all__ = [
    "AppSigning",
    "BillingRun",
    "CallWindow",
    "CertificateRefresh",
    "Contract",
    "Deduction",
    "Discrepancy",
    "Notification",
    "PlatformCertificate",
    "PresignAttempt",
    "Reconciliation",
    "SubOrder",
    "appid_validator",
    "new_out_contract_code",
    "new_trade_no",
    "out_contract_code_validator",
    "storable",
    "trade_no_validator",
]

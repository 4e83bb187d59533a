"""The app's models, one module per concern; everything is importable from ``django_papay.models``.

- ``contracts.py`` — ``Contract``: the merchant's record of each 合单代扣 contract.
- ``notifications.py`` — ``Notification``: every delivery to the notify view, stored before it is trusted.
- ``certificates.py`` — ``PlatformCertificate`` and ``CertificateRefresh``.
- ``deductions.py`` — ``Deduction`` and its ``SubOrder``s: the charges of signed contracts.
- ``refunds.py`` — ``Refund``: money given back on one sub-order.
- ``app.py`` — ``AppSigning`` and ``PresignAttempt``: users signing from the App, and their pre-sign budget.
- ``sharing.py`` — ``ProfitShare`` (and its ``ShareReceiver``s), ``ShareReturn``, ``Subsidy``: profit sharing.
- ``billing.py`` — ``BillingRun``: deductions sent by tasks.
- ``call_rate.py`` — ``CallWindow``: WeChat Pay calls per second, shared by every process.
- ``reconciliation.py`` — ``Reconciliation`` (one day's bill against our records) and its ``Discrepancy`` rows.
"""

from .app import AppSigning, PresignAttempt
from .billing import BillingRun
from .call_rate import CallWindow
from .certificates import CertificateRefresh, PlatformCertificate
from .contracts import Contract, appid_validator, new_out_contract_code, out_contract_code_validator
from .deductions import Deduction, SubOrder, new_trade_no, trade_no_validator
from .notifications import Notification, storable
from .reconciliation import Discrepancy, Reconciliation
from .refunds import NOT_REFUNDED, Refund, new_refund_no, refund_no_validator
from .sharing import ProfitShare, ShareReceiver, ShareReturn, Subsidy, new_share_no

__all__ = [
    "NOT_REFUNDED",
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
    "ProfitShare",
    "Reconciliation",
    "Refund",
    "ShareReceiver",
    "ShareReturn",
    "SubOrder",
    "Subsidy",
    "appid_validator",
    "new_out_contract_code",
    "new_refund_no",
    "new_share_no",
    "new_trade_no",
    "out_contract_code_validator",
    "refund_no_validator",
    "storable",
    "trade_no_validator",
]

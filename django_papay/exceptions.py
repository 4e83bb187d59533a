"""The errors django_papay raises. Raised once, typed, and turned into words only at the edges."""

from __future__ import annotations

from typing import Any

from . import wechatpay

# WeChat Pay's published guidance: these can succeed when sent again (later, with the same parameters).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset(
    {
        wechatpay.SYSTEM_ERROR,
        wechatpay.RATELIMIT_EXCEEDED,
        wechatpay.FREQUENCY_LIMITED,
        wechatpay.SERVICE_UNAVAILABLE,
        "FREQUENCY_LIMIT_EXCEED",
    }
)


class PapayError(Exception):
    """Base class of every error raised by django_papay."""


class WeChatPayError(PapayError):
    """A call to WeChat Pay did not give a trusted, successful answer.

    ``status`` is the HTTP status (``None`` when no answer arrived), ``code``/``message``/``detail``
    are WeChat Pay's error body (or our own code for network and verification failures),
    ``request_id`` is WeChat Pay's ``Request-ID`` when there was one, and ``retryable`` says whether
    sending the same request again later can succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        detail: Any = None,
        request_id: str = "",
        retryable: bool | None = None,
        verified: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.detail = detail
        self.request_id = request_id
        if retryable is None:
            retryable = status in RETRYABLE_STATUSES or code in RETRYABLE_CODES
        self.retryable = retryable
        # True only for an error answer whose WeChat Pay signature verified: proof that WeChat Pay itself
        # refused. Where money moves, only such a refusal is taken as "not charged".
        self.verified = verified

    def __str__(self) -> str:
        """One line for staff: the code and message, the field at fault, the HTTP status and Request-ID."""
        text = f"{self.code}: {self.message}"
        if isinstance(self.detail, dict) and self.detail.get("field"):
            text += f" [{self.detail['field']}: {self.detail.get('issue') or self.detail.get('value', '')}]"
        text += f" (HTTP {self.status}" if self.status is not None else " (no answer"
        if self.request_id:
            text += f", Request-ID {self.request_id}"
        return text + ")"


class WeChatPayNetworkError(WeChatPayError):
    """No answer: the connection failed, was reset, or timed out. Always retryable."""

    def __init__(self, message: str, *, code: str = "NETWORK_ERROR") -> None:
        super().__init__(message, code=code, retryable=True)


class InvalidResponseError(WeChatPayError):
    """An answer arrived but cannot be trusted or read (bad signature, unknown serial, stale, not JSON).

    Retryable: whatever happened on the way, a fresh request may get a good answer.
    """

    def __init__(self, message: str, *, code: str, status: int | None = None, request_id: str = "") -> None:
        super().__init__(message, code=code, status=status, request_id=request_id, retryable=True)


class NoPlatformCertificates(WeChatPayError):
    """WeChat Pay has no platform certificate for this merchant (it uses the WeChat Pay public key only)."""


class ContractStateError(PapayError):
    """The contract is in a state where the operation makes no sense (e.g. pre-signing a signed contract)."""


class DeductionStateError(PapayError):
    """The deduction is in a state where the operation makes no sense (e.g. reversing a settled charge)."""


class SharingStateError(PapayError):
    """The sub-order cannot be shared, finished or returned now (not charged with profit_sharing, not paid,
    finished already, its subsidy not paid yet…); nothing was sent."""


class RefundStateError(PapayError):
    """The refund is in a state where the operation makes no sense (e.g. retrying a refund that is not ABNORMAL)."""


class InvalidNotification(PapayError):
    """A notification we will never accept: unsigned, forged, stale, unreadable, or not about our contracts.

    The view answers it with a 4xx; ``reason`` is a short machine-readable word for the log row.
    """

    def __init__(self, reason: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status

    @property
    def unauthenticated(self) -> bool:
        """The signature is missing or does not verify (the 401s): nothing says WeChat Pay sent it."""
        return self.status == 401


class NotReprocessable(PapayError):
    """Only a verified notification whose processing failed can be applied again."""


class InsideAtomicBlock(PapayError):
    """A call that moves money was made inside ``transaction.atomic()`` (or under ``ATOMIC_REQUESTS``).

    What it stores must commit before WeChat Pay is called: a rollback afterwards would erase the only record
    of money taken. Nothing was stored or sent. ``call`` names the refused function.
    """

    def __init__(self, call: str) -> None:
        self.call = call
        super().__init__(
            f"{call} must run outside transaction.atomic(): its row must commit before WeChat Pay is called "
            "(ATOMIC_REQUESTS? decorate the view with transaction.non_atomic_requests)"
        )


def describe_error(error: BaseException) -> str:
    """An error in words for a person: a ValidationError's messages joined with "; ", anything else its text.

    The one place the edges (admin messages, commands' lines, tasks' results) turn an error into words.
    """
    messages = getattr(error, "messages", None)  # django.core.exceptions.ValidationError
    if isinstance(messages, list) and messages:
        return "; ".join(str(message) for message in messages)
    return str(error)


class BillNotReady(PapayError):
    """WeChat Pay has no bill for the day yet (NO_STATEMENT_EXIST, STATEMENT_CREATING): ask again later.

    Not an error: a day's bill is made from about 09:00 the next day (Beijing time), and a day without a trade
    has none. ``code`` is WeChat Pay's.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code

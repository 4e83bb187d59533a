"""WeChat Pay's vocabulary for 合单代扣, written once: names, paths, headers, codes and the two formats
(random nonces, RFC 3339 times) that the package, the sandbox and the tests all speak.

Plain Python, no Django and nothing of the package: everything else may import it. The facts come from
WeChat Pay's partner documentation (see the project's spec); the ones marked [I] are inferred there.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

# --- hosts --------------------------------------------------------------------------------------

# WeChat Pay's API access point (主域名).
API_URL = "https://api.mch.weixin.qq.com"
# Its backup access point (备用域名), for a request whose connection to the main one could not be made.
BACKUP_API_URL = "https://api2.mch.weixin.qq.com"

# --- signing and encryption ---------------------------------------------------------------------

# The Authorization schema of our requests and the Wechatpay-Signature-Type of WeChat Pay's answers.
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay's deliberate probe: a signature with this prefix must never verify.
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
# The only cipher WeChat Pay seals resources and certificates with.
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
# associated_data of a sealed platform certificate (GET /v3/certificates).
CERTIFICATE_ASSOCIATED_DATA = "certificate"
# A public key id (微信支付公钥) starts with this; a platform certificate serial is hex.
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
# WeChat Pay's clock rule for signed requests, answers and notifications, in seconds.
TIMESTAMP_WINDOW = 300

# --- headers ---------------------------------------------------------------------------------------

SERIAL_HEADER = "Wechatpay-Serial"
SIGNATURE_HEADER = "Wechatpay-Signature"
TIMESTAMP_HEADER = "Wechatpay-Timestamp"
NONCE_HEADER = "Wechatpay-Nonce"
SIGNATURE_TYPE_HEADER = "Wechatpay-Signature-Type"
REQUEST_ID_HEADER = "Request-ID"
# What a signed answer or notification carries; a verifier needs every one.
SIGNED_HEADERS = (SERIAL_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_TYPE_HEADER)

# --- API paths -------------------------------------------------------------------------------------
# Templates name their path parameters in braces; ``path()`` fills them in, the sandbox routes on them.

COMBINE_PAPAY = "/v3/ecommerce/combine-papay"
APP_PRESIGN_PATH = f"{COMBINE_PAPAY}/contracts/pre-entrust-sign"
MINI_PROGRAM_PRESIGN_PATH = f"{APP_PRESIGN_PATH}/mini-program"
CONTRACT_PATH = f"{COMBINE_PAPAY}/contracts/plan-id/{{plan_id}}/out-contract-code/{{out_contract_code}}"
TERMINATE_PATH = f"{CONTRACT_PATH}/terminate"
DEDUCT_PATH = f"{COMBINE_PAPAY}/transactions"
DEDUCTION_PATH = f"{DEDUCT_PATH}/{{combine_out_trade_no}}"
REVERSE_PATH = f"{DEDUCTION_PATH}/reverse"
CERTIFICATES_PATH = "/v3/certificates"
# After the charge: profit sharing (分账), its return (分账回退), subsidies (补差).
PROFITSHARING = "/v3/ecommerce/profitsharing"
SHARE_ORDERS_PATH = f"{PROFITSHARING}/orders"  # POST a share; GET ?sub_mchid=&transaction_id=&out_order_no=
FINISH_ORDER_PATH = f"{PROFITSHARING}/finish-order"
UNSPLIT_AMOUNT_PATH = f"{PROFITSHARING}/orders/{{transaction_id}}/amounts"
RETURN_ORDERS_PATH = f"{PROFITSHARING}/returnorders"  # POST a return; GET ?sub_mchid=&out_order_no=&out_return_no=
SUBSIDY_CREATE_PATH = "/v3/ecommerce/subsidies/create"
TRADE_BILL_PATH = "/v3/bill/tradebill"
# Where a bill's download_url points [I: the path WeChat Pay's answers show; the client takes the URL as given].
BILL_DOWNLOAD_PATH = "/v3/billdownload/file"
REFUNDS = "/v3/ecommerce/refunds"
REFUND_APPLY_PATH = f"{REFUNDS}/apply"
REFUND_BY_NUMBER_PATH = f"{REFUNDS}/out-refund-no/{{out_refund_no}}"
REFUND_BY_ID_PATH = f"{REFUNDS}/id/{{refund_id}}"
ABNORMAL_REFUND_PATH = f"{REFUNDS}/{{refund_id}}/apply-abnormal-refund"


def path(template: str, **parameters: object) -> str:
    """``template`` with each ``{name}`` replaced by its parameter, percent-encoded as one path segment."""
    return template.format(**{name: quote(str(value), safe="") for name, value in parameters.items()})


# --- contracts -------------------------------------------------------------------------------------

SIGN_EVENT = "ECOMMERCE_ENTRUST.SIGN"
TERMINATE_EVENT = "ECOMMERCE_ENTRUST.TERMINATE"
# associated_data of a sealed SIGN/TERMINATE resource [I: as the sandbox seals it; a receiver takes any].
ENTRUST_ASSOCIATED_DATA = "entrust"

# contract_state in the contract query's answer.
NOT_SIGNED, SIGNED, TERMINATED = "NOT_SIGNED", "SIGNED", "TERMINATED"
CONTRACT_STATES = (NOT_SIGNED, SIGNED, TERMINATED)

# contract_termination_mode values; unknown ones are stored as they come (an older revision also lists API).
USER_TERMINATE = "USER_TERMINATE"
MCH_API_TERMINATE = "MCH_API_TERMINATE"
WEPAY_WEB_TERMINATE = "WEPAY_WEB_TERMINATE"
CUSTOMER_SERVICE_TERMINATE = "CUSTOMER_SERVICE_TERMINATE"
SYSTEM_TERMINATE = "SYSTEM_TERMINATE"
TERMINATION_MODES = (
    USER_TERMINATE,
    MCH_API_TERMINATE,
    WEPAY_WEB_TERMINATE,
    CUSTOMER_SERVICE_TERMINATE,
    SYSTEM_TERMINATE,
    "API",
)

# A pre_entrustweb_id opens a signing session that lasts 2 hours.
PRESIGN_SESSION = timedelta(hours=2)
# The App opens WeChat's signing page through the OpenSDK with this business type and query info.
OPENSDK_BUSINESS_TYPE = 12
# A mini-program pre-sign is opened by navigating to WeChat Pay's signing mini-program.
SIGNING_MINI_PROGRAM = {"appId": "wxbd687630cd02ce1d", "path": "pages/index/index"}

# --- deductions (合单代扣 免密支付) ------------------------------------------------------------------

MAX_SUB_ORDERS = 50
# "Per sub-order amounts are at most 10,000,000 fen in ordinary 合单" [I: inferred from ordinary 合单, not
# documented for this family]: ¥100,000 a sub-order. A larger amount is refused before it is stored.
MAX_SUB_ORDER_AMOUNT = 10_000_000
# "商户系统超时时间为1分钟": with no final answer after a minute the merchant may reverse (撤销).
DEDUCT_WINDOW = timedelta(minutes=1)
CURRENCY = "CNY"
TRADE_TYPE = "PAP"
# trade_state values [I: the general ones; this family enumerates none]. Unknown values are stored as they come.
TRADE_SUCCESS = "SUCCESS"
TRADE_NOT_FINAL = frozenset({"NOTPAY", "USERPAYING", "ACCEPT"})
TRADE_STATES = ("SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR", "ACCEPT")

# --- profit sharing (分账) and subsidies (补差) -----------------------------------------------------

# The default maximum share of a sub-order: 30 % of its amount [C].
MAX_SHARE_PERCENT = 30
MAX_SHARE_RECEIVERS = 50  # receivers per share request [C]
# Funds not shared unfreeze by themselves after 180 days [C].
SHARING_LIMIT = timedelta(days=180)
MERCHANT_ID, PERSONAL_OPENID = "MERCHANT_ID", "PERSONAL_OPENID"
RECEIVER_TYPES = (MERCHANT_ID, PERSONAL_OPENID)
# A share's status and each receiver's result; unknown values are stored as they come.
SHARE_PROCESSING, SHARE_FINISHED = "PROCESSING", "FINISHED"
RECEIVER_PENDING, RECEIVER_SUCCESS, RECEIVER_CLOSED = "PENDING", "SUCCESS", "CLOSED"
# A return's result (分账回退); TIME_OUT_CLOSED is final, a new number is needed.
RETURN_PROCESSING, RETURN_SUCCESS, RETURN_FAILED = "PROCESSING", "SUCCESS", "FAILED"
RETURN_TIME_OUT_CLOSED = "TIME_OUT_CLOSED"
# A subsidy's result (补差).
SUBSIDY_SUCCESS, SUBSIDY_FAIL, SUBSIDY_REFUND = "SUCCESS", "FAIL", "REFUND"
# --- bills (账单) ------------------------------------------------------------------------------------

# A day's trade bill: every payment and refund of the day, by its data time, cut at 00:00 Beijing time.
BILL_TYPE_ALL = "ALL"
TAR_TYPE_GZIP = "GZIP"
BILL_HASH_TYPE = "SHA1"
# No bill for the day: no trade that day, or not made yet (ready from about 10:00 the next day).
NO_STATEMENT_EXIST = "NO_STATEMENT_EXIST"
STATEMENT_CREATING = "STATEMENT_CREATING"
BILL_NOT_READY_CODES = frozenset({NO_STATEMENT_EXIST, STATEMENT_CREATING})
# Every value of a detail or summary row starts with this, so that spreadsheets keep long numbers.
BILL_VALUE_PREFIX = "`"
# The columns of a service provider's ALL bill, as the header row names them (read by name, never position).
BILL_COLUMNS = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)
BILL_SUMMARY_COLUMNS = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)
# 交易状态 of a bill row: a payment, or a refund.
BILL_PAYMENT = "SUCCESS"
BILL_REFUND = "REFUND"
# The bill's time format (交易时间), Beijing time.
BILL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# --- refunds (平台收付通 退款) ------------------------------------------------------------------------

REFUND_SUCCESS_EVENT = "REFUND.SUCCESS"
REFUND_ABNORMAL_EVENT = "REFUND.ABNORMAL"
REFUND_CLOSED_EVENT = "REFUND.CLOSED"
REFUND_EVENTS = (REFUND_SUCCESS_EVENT, REFUND_ABNORMAL_EVENT, REFUND_CLOSED_EVENT)
# associated_data and original_type of a sealed REFUND.* resource [C: original_type "refund"; the AAD: I].
REFUND_ASSOCIATED_DATA = "refund"
# A refund's status in the query and the notifications. Sources disagree on CLOSED and CLOSE [C both]: both
# are taken; any other value is stored as it comes.
REFUND_SUCCESS, REFUND_PROCESSING, REFUND_ABNORMAL, REFUND_CLOSED, REFUND_CLOSE = (
    "SUCCESS",
    "PROCESSING",
    "ABNORMAL",
    "CLOSED",
    "CLOSE",
)
REFUND_STATES = (REFUND_SUCCESS, REFUND_PROCESSING, REFUND_ABNORMAL, REFUND_CLOSED, REFUND_CLOSE)
# refund_account: from the sub-merchant's balance (the default), or advanced by the platform (垫付).
REFUND_SOURCE_SUB_MERCHANT = "REFUND_SOURCE_SUB_MERCHANT"
REFUND_SOURCE_PARTNER_ADVANCE = "REFUND_SOURCE_PARTNER_ADVANCE"
# "At most 50 partial refunds per order" [C]; out_refund_no is string(64), reason string(80) [C].
MAX_REFUNDS = 50
# "Orders older than one year cannot be refunded" [C]; counted here from the sub-order's success_time.
REFUNDABLE_FOR = timedelta(days=365)
MAX_REFUND_NO = 64
MAX_REFUND_REASON = 80
# An ABNORMAL refund re-driven to the sub-merchant's bank account (the type that needs no user's card details)
# [I: the spec does not check this call's fields].
ABNORMAL_REFUND_TYPE = "MERCHANT_BANK_CARD"

# --- error codes -----------------------------------------------------------------------------------

PARAM_ERROR = "PARAM_ERROR"
INVALID_REQUEST = "INVALID_REQUEST"
SIGN_ERROR = "SIGN_ERROR"
NO_AUTH = "NO_AUTH"
RESOURCE_NOT_EXISTS = "RESOURCE_NOT_EXISTS"
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"
# A deduction against a terminated (or unknown) contract.
CONTRACT_NOT_EXIST = "CONTRACT_NOT_EXIST"
RATELIMIT_EXCEEDED = "RATELIMIT_EXCEEDED"
FREQUENCY_LIMITED = "FREQUENCY_LIMITED"
SYSTEM_ERROR = "SYSTEM_ERROR"
# A refund the sub-merchant's balance cannot cover: nothing refunded; send it again later, or as 垫付.
NOT_ENOUGH = "NOT_ENOUGH"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"

# --- formats ---------------------------------------------------------------------------------------

ALPHANUMERIC = string.ascii_letters + string.digits
UPPER_HEX = string.digits + "ABCDEF"


def nonce(length: int = 32, alphabet: str = ALPHANUMERIC) -> str:
    """A random text: request nonces (32), AES-GCM nonces (12), ids and keys the sandbox and tests make up."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


# Every WeChat Pay time is written in Beijing time.
BEIJING = timezone(timedelta(hours=8))

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(value: object) -> datetime | None:
    """An aware datetime for an RFC 3339 time such as ``2025-01-01T10:00:00+08:00``; None for anything else.

    None also for a well-formed time that does not exist (month 13) or that UTC cannot hold
    (``0001-01-01T00:00:00+08:00``): such a time cannot be stored, so it is no time at all.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_hours, offset_minutes = match.groups()
    try:
        offset = timedelta(0) if zulu else timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
        moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment


def format_rfc3339(moment: datetime | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SS+08:00``, as WeChat Pay writes times; now by default.

    A naive datetime is taken as Beijing wall-clock time, an aware one is converted to +08:00.
    """
    moment = datetime.now(BEIJING) if moment is None else moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S+08:00")

"""A loopback WeChat Pay simulator for tests and the demo; plain Python, no Django.

    from django_papay.sandbox import Sandbox, ensure_demo_keys

    with ensure_demo_keys("var/demo-keys").sandbox() as sandbox:
        ...  # point the client at sandbox.url; inspect sandbox.requests and sandbox.presigns
        sandbox.notify_rewrite = {"https://papay.example/": live_server_url + "/"}
        sandbox.sign_contract("C20250101A1")  # the user signs: ECOMMERCE_ENTRUST.SIGN is delivered

Served over https with ``Sandbox(..., tls=self_signed_certificate())``; the client trusts it through
``PAPAY["CA_BUNDLE"]`` set to that certificate file. ``Sandbox(..., state_file=path)`` keeps its pre-signs
and contracts across restarts. Run one in the foreground with ``python -m django_papay.sandbox --keys-dir DIR``.

Shaped like moto, one way down — state ← handlers ← routes ← HTTP — with the facade on top:

    facade.py              Sandbox: the thin front tests, the demo and the CLI drive; nothing else imports it
    httpd.py               the http.server code: read a request, let its fault serve it, write or reset the wire
    routes.py              the route table (from wechatpay's path templates): merchant-API routes, control routes
    handlers/contracts.py     pre-sign (APP, mini-program), query, terminate
    handlers/certificates.py  GET /v3/certificates
    handlers/deductions.py    charge a signed contract, query a charge, reverse (撤销) it
    handlers/sharing.py       profit sharing: share, query, finish, amounts, return (分账回退)
    handlers/subsidies.py     subsidies/create (补差)
    handlers/bills.py         a day's trade bill (GET /v3/bill/tradebill) and its download, unsigned
    handlers/refunds.py       refund a paid sub-order, query a refund, re-drive an ABNORMAL one
    handlers/control.py       the loopback controls under /sandbox/ (play the user by hand)
    user.py                WeChatUser: build SIGN/TERMINATE from the state, record them, deliver them
    delivery.py            POSTing notifications as WeChat Pay's notifier does, into the delivery log
    outgoing.py            OutgoingNotification: sealing, enveloping and signing one notification
    refund_notices.py      RefundNotices: build REFUND.* from the refund book, deliver them
    faults.py              injected faults, each an object owning its hook (reply, sign, transmit)
    state.py               SandboxState: identity and keys, the stores, the logs, the knobs, the state file
    contract_book.py       ContractBook: the one store of pre-signs and contracts
    deduction_book.py      DeductionBook: the charges, POSTs counted per number, the trade_state switch
    sharing_book.py        SharingBook: frozen / available balances per merchant, shares, returns, subsidies
    bill_desk.py           BillDesk: bills made from the books on request, download tokens, the bills' switches
    bill_file.py           a bill file as WeChat Pay writes it: backticks, summary, gzip, SHA1
    refund_book.py         RefundBook: the refunds, POSTs counted per number, the outcome and NOT_ENOUGH switches
    platform_certificates.py  the platform certificates issued to the merchant
    records.py             RecordedRequest, Delivery and their logs
    validation.py          the checks WeChat Pay makes: headers, Authorization signature, body rules
    replies.py             Reply and ApiError: what a handler gives back, and how a reply is signed
    keys.py, tls.py        demo credentials (DemoKeys builds a Sandbox) and the throwaway TLS certificate
    __main__.py            the command line

To add an endpoint family, do as deductions do: a store (``deduction_book.py``, with ``dump``/``load``/``clear``
and an ``on_change`` hook) as an attribute of ``SandboxState``, named in ``SandboxState.PERSISTED`` so the
state file keeps it; a handler module (``handlers/deductions.py``) of ``(state, request, match) -> Reply``
functions; and its rows in ``routes.MERCHANT_API_ROUTES`` from ``wechatpay``'s path templates.
"""

from .facade import Sandbox
from .keys import DemoKeys, ensure_demo_keys
from .outgoing import OutgoingNotification
from .records import Delivery, RecordedRequest
from .tls import TLSFiles, self_signed_certificate

__all__ = [
    "Delivery",
    "DemoKeys",
    "OutgoingNotification",
    "RecordedRequest",
    "Sandbox",
    "TLSFiles",
    "ensure_demo_keys",
    "self_signed_certificate",
]

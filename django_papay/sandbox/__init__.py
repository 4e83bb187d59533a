"""A loopback WeChat Pay simulator for tests and the demo; plain Python, no Django.

    from django_papay.sandbox import Sandbox, ensure_demo_keys

    with ensure_demo_keys("var/demo-keys").sandbox() as sandbox:
        ...  # point the client at sandbox.url; inspect sandbox.requests and sandbox.presigns
        sandbox.notify_rewrite = {"https://papay.example/": live_server_url + "/"}
        sandbox.sign_contract("C20250101A1")  # the user signs: ECOMMERCE_ENTRUST.SIGN is delivered

Served over https with ``Sandbox(..., tls=self_signed_certificate())``; the client trusts it through
``PAPAY["CA_BUNDLE"]`` set to that certificate file.

Run one in the foreground with ``python -m django_papay.sandbox --keys-dir DIR``.
"""

from .delivery import Delivery
from .keys import DemoKeys, ensure_demo_keys
from .notifications import Notification
from .server import RecordedRequest, Sandbox
from .tls import TLSFiles, self_signed_certificate

__all__ = [
    "Delivery", "DemoKeys", "Notification", "RecordedRequest", "Sandbox", "TLSFiles", "ensure_demo_keys",
    "self_signed_certificate",
]

"""A loopback WeChat Pay simulator for tests and the demo; plain Python, no Django.

    from django_papay.sandbox import Sandbox, ensure_demo_keys

    with ensure_demo_keys("var/demo-keys").sandbox() as sandbox:
        ...  # point the client at sandbox.url; inspect sandbox.requests and sandbox.presigns

Run one in the foreground with ``python -m django_papay.sandbox --keys-dir DIR``.
"""

from .keys import DemoKeys, ensure_demo_keys
from .server import RecordedRequest, Sandbox

__all__ = ["DemoKeys", "RecordedRequest", "Sandbox", "ensure_demo_keys"]

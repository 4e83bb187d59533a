"""What the app does with WeChat Pay. Services own the transaction and lock boundaries.

- ``presign`` — open an APP signing session for a contract (``services/presign.py``).
- ``receive_notification`` — verify and apply a SIGN or TERMINATE notification (``services/notifications.py``).
"""

from .notifications import receive_notification
from .presign import check_can_presign, presign, presign_payload, record_failure

__all__ = ["check_can_presign", "presign", "presign_payload", "receive_notification", "record_failure"]

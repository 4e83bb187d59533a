"""The stored platform certificates, read: the valid ones, a key by serial, and the keys a notification may be
signed with (cached for CERTIFICATE_CACHE_SECONDS). Lookups only: downloading them is ``certificates.py``.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from .. import conf, crypto
from ..models import PlatformCertificate


def valid_certificates(now: datetime | None = None) -> QuerySet[PlatformCertificate]:
    """The stored certificates valid at ``now`` (default: now)."""
    now = now or timezone.now()
    return PlatformCertificate.objects.filter(effective_time__lte=now, expire_time__gt=now)


@functools.lru_cache(maxsize=32)
def cached_public_key(pem: str) -> rsa.RSAPublicKey:
    """The public key of a certificate's PEM, parsed once per process."""
    return crypto.load_public_key(pem)


def certificate_key(serial: str) -> rsa.RSAPublicKey | None:
    """The key of the stored, currently valid certificate ``serial``; a lookup, never a download."""
    pem = valid_certificates().filter(serial_no=serial).values_list("pem", flat=True).first()
    return cached_public_key(pem) if pem else None


def certificate_keys() -> dict[str, rsa.RSAPublicKey]:
    """The keys of the stored, currently valid certificates by serial; a lookup, never a download."""
    return {serial: cached_public_key(pem) for serial, pem in valid_certificates().values_list("serial_no", "pem")}


def notification_keys() -> dict[str, rsa.RSAPublicKey]:
    """Every key a notification may be signed with: the public key and the valid stored certificates.

    The stored certificates are read at most once per CERTIFICATE_CACHE_SECONDS per process (every delivery
    asked the database before): a rotation reaches every worker within that, and this process's own
    downloads, saves and deletes at once. Validity is judged at each call, from the cached times.
    """
    keys = conf.wechatpay_public_keys()
    if conf.platform_certificates():
        now = timezone.now()
        keys.update({serial: key for serial, key, start, end in _stored_certificates() if start <= now < end})
    return keys


# A rotation takes effect within this (WeChat Pay overlaps the old and the new certificate for days).
CERTIFICATE_CACHE_SECONDS = 30.0
_stored: tuple[float, list[tuple[str, rsa.RSAPublicKey, datetime, datetime]]] | None = None


def _stored_certificates() -> list[tuple[str, rsa.RSAPublicKey, datetime, datetime]]:
    global _stored
    cached = _stored
    if cached is not None and time.monotonic() - cached[0] < CERTIFICATE_CACHE_SECONDS:
        return cached[1]
    rows = PlatformCertificate.objects.values_list("serial_no", "pem", "effective_time", "expire_time")
    certificates = [(serial, cached_public_key(pem), start, end) for serial, pem, start, end in rows]
    _stored = (time.monotonic(), certificates)
    return certificates


@receiver([post_save, post_delete], sender=PlatformCertificate, dispatch_uid="papay_forget_stored_certificates")
def forget_stored_certificates(**kwargs: object) -> None:
    """Drop the cached certificates: the next notification reads them again."""
    global _stored
    _stored = None

"""Platform certificates (平台证书) the sandbox's WeChat Pay has issued to its merchant: issued, rotated, listed.

A new merchant has none: the sandbox then answers ``GET /v3/certificates`` with 404 RESOURCE_NOT_EXISTS,
as WeChat Pay does for merchants that only have the WeChat Pay public key. ``issue()`` gives the merchant
a certificate (its own new key unless one is given); ``rotate()`` issues the next one, the old one still
listed, as WeChat Pay publishes a new certificate before it signs with it. The list is served the way
WeChat Pay serves it: each PEM sealed with AEAD_AES_256_GCM under the APIv3 key, associated data
``certificate``.

By default the sandbox signs answers and notifications with the WeChat Pay public key; with
``sign_with_certificate = True`` it signs them with the newest certificate instead, under its serial.

    sandbox.certificates.issue()
    sandbox.certificates.sign_with_certificate = True
    new = sandbox.certificates.rotate()     # answers now carry Wechatpay-Serial: new.serial_no
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from django_papay import crypto, wechatpay

VALIDITY = timedelta(days=5 * 365)  # WeChat Pay's platform certificates last five years


@dataclass(frozen=True)
class IssuedCertificate:
    """One platform certificate and the private key that signs under its serial."""

    serial_no: str
    certificate: x509.Certificate = field(repr=False)
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def effective_time(self) -> datetime:
        return crypto.certificate_validity(self.certificate)[0]

    @property
    def expire_time(self) -> datetime:
        return crypto.certificate_validity(self.certificate)[1]


def issue_certificate(
    private_key: rsa.RSAPrivateKey | None = None,
    *,
    not_before: datetime | None = None,
    valid_for: timedelta = VALIDITY,
) -> IssuedCertificate:
    """A self-signed certificate shaped like WeChat Pay's: RSA-2048, a 40-hex-digit serial."""
    key = private_key or crypto.generate_private_key()
    start = not_before or datetime.now(timezone.utc) - timedelta(minutes=1)
    serial = secrets.randbits(158) | (1 << 158)  # 159 bits: 40 hex digits, the most X.509 allows
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sandbox platform certificate"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(crypto.certificate_serial_no(certificate), certificate, key)


class PlatformCertificates:
    """The certificates the sandbox's WeChat Pay has issued to its merchant, oldest first. Thread-safe."""

    def __init__(self) -> None:
        self.sign_with_certificate = False
        self._lock = threading.Lock()
        self._issued: list[IssuedCertificate] = []

    @property
    def issued(self) -> list[IssuedCertificate]:
        with self._lock:
            return list(self._issued)

    @property
    def current(self) -> IssuedCertificate | None:
        """The newest certificate, the one that signs when ``sign_with_certificate`` is on."""
        with self._lock:
            return self._issued[-1] if self._issued else None

    def issue(self, private_key: rsa.RSAPrivateKey | None = None, **options: Any) -> IssuedCertificate:
        """Issue a certificate (see ``issue_certificate`` for ``not_before``/``valid_for``); it becomes current."""
        issued = issue_certificate(private_key, **options)
        with self._lock:
            self._issued.append(issued)
        return issued

    def rotate(self) -> IssuedCertificate:
        """Issue the next certificate with a new key; the older ones stay listed."""
        return self.issue()

    def clear(self) -> None:
        """Back to a merchant without certificates, signing with the public key."""
        with self._lock:
            self._issued.clear()
        self.sign_with_certificate = False

    def listing(self, apiv3_key: str) -> dict[str, Any]:
        """The body of ``GET /v3/certificates``: every issued certificate, sealed with ``apiv3_key``."""
        data = []
        for issued in self.issued:
            nonce = wechatpay.nonce(crypto.GCM_NONCE_BYTES)
            data.append(
                {
                    "serial_no": issued.serial_no,
                    "effective_time": wechatpay.format_rfc3339(issued.effective_time),
                    "expire_time": wechatpay.format_rfc3339(issued.expire_time),
                    "encrypt_certificate": {
                        "algorithm": wechatpay.AEAD_ALGORITHM,
                        "nonce": nonce,
                        "associated_data": wechatpay.CERTIFICATE_ASSOCIATED_DATA,
                        "ciphertext": crypto.encrypt(
                            apiv3_key, nonce, issued.pem, wechatpay.CERTIFICATE_ASSOCIATED_DATA
                        ),
                    },
                }
            )
        return {"data": data}

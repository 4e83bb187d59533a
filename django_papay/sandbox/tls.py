"""HTTPS for the sandbox: a throwaway self-signed certificate for loopback, and the server's TLS context.

WeChat Pay is only ever reached over https; serving the sandbox the same way lets tests and benchmarks
cross the same TLS layer (handshakes, connection reuse) the client meets in production. The
certificate is its own CA: a client trusts it by using ``certfile`` as its CA bundle (for django-papay,
``PAPAY["CA_BUNDLE"]``). It is made up at run time and never written anywhere but the given folder.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_FILE = "sandbox-cert.pem"
KEY_FILE = "sandbox-key.pem"


class TLSFiles(NamedTuple):
    """A certificate and its private key as PEM files; pass as ``Sandbox(tls=...)``."""

    certfile: str  # also the CA bundle that makes a client trust the sandbox
    keyfile: str


def self_signed_certificate(directory: str | Path | None = None, *, days: int = 7) -> TLSFiles:
    """Write a new certificate for ``localhost``, 127.0.0.1 and ::1 (and its key) into ``directory``.

    Without ``directory`` a fresh temporary folder is used (left for the caller or the OS to remove).
    The key is ECDSA P-256; the certificate carries the extensions strict verifiers ask of a
    self-signed CA (Python 3.13 sets ``VERIFY_X509_STRICT``), so it works as its own trust anchor.
    """
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="papay-tls-"))
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "django-papay sandbox")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / CERTIFICATE_FILE, folder / KEY_FILE
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(str(certfile), str(keyfile))


def server_context(tls: TLSFiles | tuple[str, str]) -> ssl.SSLContext:
    """The sandbox's server-side TLS context for ``(certfile, keyfile)``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*tls)
    return context

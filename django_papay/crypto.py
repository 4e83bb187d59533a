"""The cryptography of WeChat Pay APIv3, as pure functions.

No Django and no HTTP here: build the messages that get signed, sign them with the merchant's
RSA key, verify WeChat Pay's signatures, and open (or, for the sandbox and tests, seal)
AEAD_AES_256_GCM resources. The only I/O is reading a key file.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import wechatpay
from .wechatpay import SIGNATURE_TYPE, SIGNTEST_PREFIX

APIV3_KEY_BYTES = 32
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16

# SHA256withRSA: PKCS#1 v1.5 padding over SHA-256. Stateless, so made once rather than per signature.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
# Sensitive fields (receiver_name…): RSA-OAEP with SHA-1 and MGF1-SHA-1, WeChat Pay's rule for APIv3.
_OAEP_SHA1 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


class KeyLoadError(ValueError):
    """A key could not be loaded; ``reason`` is a short machine-readable word: "not_pem" or "not_rsa"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignatureError(ValueError):
    """A WeChat Pay signature was refused; ``reason`` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DecryptionError(ValueError):
    """An AEAD_AES_256_GCM resource could not be opened (wrong key, nonce, AAD, or tampered)."""


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


# --- keys -----------------------------------------------------------------------------------


def read_key_file(path: str | Path) -> bytes:
    """Read a PEM file; the only I/O this module does."""
    return Path(path).read_bytes()


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """Load the merchant's API private key (PKCS#8 or PKCS#1 PEM, RSA)."""
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not_pem", "not a readable unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError("not_rsa", "not an RSA private key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """Load WeChat Pay's public key from a public-key PEM or an X.509 certificate PEM."""
    data = _as_bytes(pem)
    key: object  # any kind of public key until checked below
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not_pem", "not a readable PEM public key or certificate") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError("not_rsa", "not an RSA public key")
    return key


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key, for tests, the sandbox and the demo."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


# --- messages -------------------------------------------------------------------------------


def request_message(method: str, url: str, timestamp: int | str, nonce: str, body: str | bytes) -> bytes:
    """The merchant's signing message: ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``.

    ``url`` is the path plus ``?query`` exactly as sent, without the host; ``body`` is empty for GET.
    """
    head = f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode()
    return head + _as_bytes(body) + b"\n"


def response_message(timestamp: int | str, nonce: str, body: str | bytes) -> bytes:
    """WeChat Pay's signing message for answers and notifications: ``TIMESTAMP\\nNONCE\\nBODY\\n``."""
    return f"{timestamp}\n{nonce}\n".encode() + _as_bytes(body) + b"\n"


# --- sign and verify ------------------------------------------------------------------------


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64."""
    signature = private_key.sign(message, _PKCS1V15, _SHA256)
    return base64.b64encode(signature).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """True only when ``signature`` (base64) is a valid SHA256withRSA signature of ``message``."""
    if not signature or signature.startswith(SIGNTEST_PREFIX):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(raw, message, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def timestamp_is_fresh(
    timestamp: str | int, *, now: float | None = None, window: int = wechatpay.TIMESTAMP_WINDOW
) -> bool:
    """WeChat Pay's clock rule: a signed timestamp (whole seconds) at most ``window`` seconds off.

    Only ASCII digits count: ``int()`` would also read " 1_000", "٣" or a thousand digits, and the last
    overflows when compared with the float clock.
    """
    text = str(timestamp)
    if not _TIMESTAMP.fullmatch(text):
        return False
    current = time.time() if now is None else now
    return abs(current - int(text)) <= window


def verify_wechatpay_signature(
    public_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    serial: str,
    signature: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    now: float | None = None,
    window: int = wechatpay.TIMESTAMP_WINDOW,
) -> None:
    """Check WeChat Pay's signature on an answer or a notification; raise SignatureError if refused.

    The key is chosen by ``Wechatpay-Serial``; an unknown serial, a timestamp more than ``window``
    seconds off, a ``WECHATPAY/SIGNTEST/`` probe or a signature that does not verify are refused.
    """
    if not (serial and signature and timestamp and nonce):
        raise SignatureError("missing", "the answer is not signed (Wechatpay-* headers missing)")
    key = public_keys.get(serial)
    if key is None:
        raise SignatureError("unknown_serial", f"signed with an unknown key (Wechatpay-Serial {serial!r})")
    if not timestamp_is_fresh(timestamp, now=now, window=window):
        raise SignatureError("stale", f"signature timestamp {timestamp!r} is more than {window} s from now")
    if signature.startswith(SIGNTEST_PREFIX):
        raise SignatureError("probe", f"WeChat Pay signature probe ({SIGNTEST_PREFIX}) refused as required")
    if not verify(key, response_message(timestamp, nonce, body), signature):
        raise SignatureError("bad_signature", "the signature does not verify")


def authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    url: str,
    body: str | bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value for one request."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = wechatpay.nonce() if nonce is None else nonce
    signature = sign(private_key, request_message(method, url, timestamp, nonce, body))
    return (
        f'{SIGNATURE_TYPE} mchid="{mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{signature}"'
    )


def signature_headers(
    body: bytes,
    *,
    private_key: rsa.RSAPrivateKey,
    serial: str,
    timestamp: int | str | None = None,
    nonce: str | None = None,
    signature: str | None = None,
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers with which WeChat Pay signs an answer or a notification carrying ``body``.

    The sandbox and the tests sign as WeChat Pay does with this; ``signature`` replaces the real one (a probe).
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = wechatpay.nonce() if nonce is None else nonce
    if signature is None:
        signature = sign(private_key, response_message(timestamp, nonce, body))
    return {
        wechatpay.SERIAL_HEADER: serial,
        wechatpay.SIGNATURE_HEADER: signature,
        wechatpay.TIMESTAMP_HEADER: str(timestamp),
        wechatpay.NONCE_HEADER: nonce,
        wechatpay.SIGNATURE_TYPE_HEADER: SIGNATURE_TYPE,
    }


_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')


def parse_authorization(header: str) -> dict[str, str]:
    """Split an ``Authorization`` header into its fields (any order); ``{}`` when malformed."""
    schema, _, params = header.strip().partition(" ")
    if schema != SIGNATURE_TYPE:
        return {}
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(params):
        match = _AUTH_PARAM.match(params, pos)
        if not match:
            return {}
        fields[match.group(1)] = match.group(2)
        pos = match.end()
    return fields


# --- AEAD_AES_256_GCM -----------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _aesgcm(apiv3_key: str | bytes) -> AESGCM:
    # Cached: setting up the cipher costs more than the decryption itself, and a merchant has
    # one APIv3 key. AESGCM keeps no per-message state, so one object serves every thread.
    key = _as_bytes(apiv3_key)
    if len(key) != APIV3_KEY_BYTES:
        raise DecryptionError(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes")
    return AESGCM(key)


def decrypt(apiv3_key: str | bytes, nonce: str, ciphertext: str, associated_data: str | None = "") -> bytes:
    """Open a resource: ``ciphertext`` is base64 of ciphertext‖tag, nonce and AAD are UTF-8 text."""
    nonce_bytes = _as_bytes(nonce or "")
    if len(nonce_bytes) != GCM_NONCE_BYTES:
        raise DecryptionError(f"the nonce must be {GCM_NONCE_BYTES} bytes")
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DecryptionError("the ciphertext is not base64") from exc
    if len(sealed) < GCM_TAG_BYTES:
        raise DecryptionError("the ciphertext is shorter than its tag")
    aad = _as_bytes(associated_data or "") or None
    try:
        return _aesgcm(apiv3_key).decrypt(nonce_bytes, sealed, aad)
    except InvalidTag as exc:
        raise DecryptionError("the resource does not open with this APIv3 key") from exc


def encrypt(apiv3_key: str | bytes, nonce: str, plaintext: str | bytes, associated_data: str | None = "") -> str:
    """Seal a resource the way WeChat Pay does (the sandbox and tests use this)."""
    aad = _as_bytes(associated_data or "") or None
    sealed = _aesgcm(apiv3_key).encrypt(_as_bytes(nonce), _as_bytes(plaintext), aad)
    return base64.b64encode(sealed).decode("ascii")


# --- platform certificates ------------------------------------------------------------------


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Load an X.509 certificate PEM whose key is RSA (a WeChat Pay platform certificate)."""
    try:
        certificate = x509.load_pem_x509_certificate(_as_bytes(pem))
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not_pem", "not a readable PEM certificate") from exc
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise KeyLoadError("not_rsa", "not a certificate for an RSA key")
    return certificate


def certificate_serial_no(certificate: x509.Certificate) -> str:
    """The serial number as WeChat Pay writes it: upper-case hex."""
    return f"{certificate.serial_number:X}"


def serial_no_matches(serial_no: str, certificate: x509.Certificate) -> bool:
    """True when the hex ``serial_no`` a listing gives is the certificate's own serial number."""
    try:
        return int(serial_no, 16) == certificate.serial_number
    except ValueError:
        return False


def certificate_validity(certificate: x509.Certificate) -> tuple[datetime, datetime]:
    """``(not_before, not_after)`` as aware UTC datetimes."""
    if hasattr(certificate, "not_valid_before_utc"):  # cryptography >= 42
        return certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return (
        certificate.not_valid_before.replace(tzinfo=timezone.utc),
        certificate.not_valid_after.replace(tzinfo=timezone.utc),
    )


# --- sensitive fields (敏感信息加密) ----------------------------------------------------------------


def encrypt_sensitive(public_key: rsa.RSAPublicKey, plaintext: str) -> str:
    """``plaintext`` encrypted for WeChat Pay (RSA-OAEP, SHA-1, MGF1-SHA-1), base64.

    Randomised: the same name gives another ciphertext each time. The request carrying it names the key
    (its public key id or certificate serial) in ``Wechatpay-Serial``.
    """
    return base64.b64encode(public_key.encrypt(plaintext.encode("utf-8"), _OAEP_SHA1)).decode("ascii")


def decrypt_sensitive(private_key: rsa.RSAPrivateKey, ciphertext: str) -> str:
    """What ``encrypt_sensitive`` sealed, opened with the private key (WeChat Pay's side: the sandbox, tests).

    Raises DecryptionError for anything that is not such a ciphertext for this key.
    """
    try:
        return private_key.decrypt(base64.b64decode(ciphertext, validate=True), _OAEP_SHA1).decode("utf-8")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise DecryptionError("not a sensitive field encrypted for this key") from exc

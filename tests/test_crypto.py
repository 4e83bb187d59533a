"""crypto.py: WeChat Pay's known-answer vectors and the rules around them."""

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from django_papay import crypto

# WeChat Pay's published documentation key (public, see vectors/README.md), shipped with the tests.
OFFICIAL_KEY = Path(__file__).resolve().parent / "vectors" / "official-doc-test-key.pem"

AES_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
AES_NONCE = "uluk4a9R25RW"
AES_AAD = "associatedData"
AES_CIPHERTEXT = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="


@pytest.fixture(scope="module")
def official_key():
    return crypto.load_private_key(crypto.read_key_file(OFFICIAL_KEY))


def test_request_signature_matches_official_known_answer(official_key):
    message = crypto.request_message(
        "GET", "/v3/refund/domestic/refunds/123123123123", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", ""
    )
    signature = crypto.sign(official_key, message)
    assert len(signature) == 344
    assert signature.startswith("Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01")
    assert signature.endswith("G65G4dMKdFcoA==")


def test_authorization_header_carries_the_known_answer_signature(official_key):
    header = crypto.authorization(
        mchid="1900007291",
        serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
        private_key=official_key,
        method="GET",
        url="/v3/refund/domestic/refunds/123123123123",
        timestamp=1554208460,
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    fields = crypto.parse_authorization(header)
    assert header.startswith("WECHATPAY2-SHA256-RSA2048 ")
    assert fields["mchid"] == "1900007291"
    assert fields["serial_no"] == "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"
    assert fields["timestamp"] == "1554208460"
    assert fields["signature"].startswith("Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01")


def test_aes_gcm_decrypts_official_known_answer():
    assert crypto.decrypt(AES_KEY, AES_NONCE, AES_CIPHERTEXT, AES_AAD) == b"message"


def test_aes_gcm_encrypts_to_official_known_answer():
    assert crypto.encrypt(AES_KEY, AES_NONCE, "message", AES_AAD) == AES_CIPHERTEXT


@pytest.mark.parametrize(
    "key, nonce, ciphertext, aad",
    [
        ("b" * 32, AES_NONCE, AES_CIPHERTEXT, AES_AAD),  # another APIv3 key
        (AES_KEY, "uluk4a9R25RX", AES_CIPHERTEXT, AES_AAD),  # another nonce
        (AES_KEY, AES_NONCE, AES_CIPHERTEXT, "certificate"),  # another AAD
        (AES_KEY, AES_NONCE, "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwA=", AES_AAD),  # tampered tag
        (AES_KEY, AES_NONCE, "not base64!", AES_AAD),
        (AES_KEY, AES_NONCE, "AAAA", AES_AAD),  # shorter than the tag
        (AES_KEY, "short", AES_CIPHERTEXT, AES_AAD),
        ("too short", AES_NONCE, AES_CIPHERTEXT, AES_AAD),
    ],
)
def test_aes_gcm_refuses_anything_but_the_exact_inputs(key, nonce, ciphertext, aad):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(key, nonce, ciphertext, aad)


def test_request_message_ends_every_line_with_newline():
    assert crypto.request_message("post", "/v3/x?a=1", 1, "N", '{"a":1}') == b'POST\n/v3/x?a=1\n1\nN\n{"a":1}\n'


def test_response_message_of_empty_body_keeps_the_blank_line():
    assert crypto.response_message("1700000000", "N", b"") == b"1700000000\nN\n\n"


@pytest.fixture
def wechatpay_key(keys):
    return keys.wechatpay


def _signed(key, body=b'{"ok":true}', timestamp="1700000000", nonce="NONCE"):
    return dict(
        serial="PUB_KEY_ID_1",
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        signature=crypto.sign(key, crypto.response_message(timestamp, nonce, body)),
    )


def test_wechatpay_signature_verifies(wechatpay_key):
    keys = {"PUB_KEY_ID_1": wechatpay_key.public_key()}
    crypto.verify_wechatpay_signature(keys, now=1700000000, **_signed(wechatpay_key))


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"serial": "PUB_KEY_ID_2"}, "unknown_serial"),
        ({"body": b'{"ok":false}'}, "bad_signature"),
        ({"signature": "WECHATPAY/SIGNTEST/" + "A" * 300}, "probe"),
        ({"signature": ""}, "missing"),
        ({"signature": "%%%not-base64%%%"}, "bad_signature"),
    ],
)
def test_wechatpay_signature_refusals(wechatpay_key, change, reason):
    keys = {"PUB_KEY_ID_1": wechatpay_key.public_key()}
    with pytest.raises(crypto.SignatureError) as caught:
        crypto.verify_wechatpay_signature(keys, now=1700000000, **{**_signed(wechatpay_key), **change})
    assert caught.value.reason == reason


@pytest.mark.parametrize("offset, accepted", [(300, True), (-300, True), (301, False), (-301, False)])
def test_wechatpay_signature_clock_window_is_300_seconds(wechatpay_key, offset, accepted):
    keys = {"PUB_KEY_ID_1": wechatpay_key.public_key()}
    signed = _signed(wechatpay_key)
    if accepted:
        crypto.verify_wechatpay_signature(keys, now=1700000000 + offset, **signed)
    else:
        with pytest.raises(crypto.SignatureError, match="300 s"):
            crypto.verify_wechatpay_signature(keys, now=1700000000 + offset, **signed)


def test_signature_by_another_key_does_not_verify(wechatpay_key, keys):
    known = {"PUB_KEY_ID_1": wechatpay_key.public_key()}
    with pytest.raises(crypto.SignatureError):
        crypto.verify_wechatpay_signature(known, now=1700000000, **_signed(keys.stranger))


def _self_signed_certificate_pem(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_public_key_loads_from_public_key_pem_and_from_certificate(wechatpay_key):
    expected = wechatpay_key.public_key().public_numbers()
    assert crypto.load_public_key(crypto.public_key_pem(wechatpay_key.public_key())).public_numbers() == expected
    assert crypto.load_public_key(_self_signed_certificate_pem(wechatpay_key)).public_numbers() == expected


@pytest.mark.parametrize("pem", ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_unreadable_private_key_is_a_key_load_error(pem):
    with pytest.raises(crypto.KeyLoadError):
        crypto.load_private_key(pem)


def test_parse_authorization_accepts_any_field_order_and_rejects_junk():
    header = 'WECHATPAY2-SHA256-RSA2048 signature="s",mchid="1",serial_no="S",timestamp="2",nonce_str="n"'
    assert crypto.parse_authorization(header) == {
        "signature": "s",
        "mchid": "1",
        "serial_no": "S",
        "timestamp": "2",
        "nonce_str": "n",
    }
    assert crypto.parse_authorization('Bearer mchid="1"') == {}
    assert crypto.parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=1") == {}


# --- sensitive fields (RSA-OAEP, SHA-1) ---------------------------------------------------------------


def test_a_sensitive_field_is_rsa_oaep_sha1_under_the_public_key():
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = crypto.generate_private_key()
    ciphertext = crypto.encrypt_sensitive(key.public_key(), "示例平台有限公司")
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    assert key.decrypt(base64.b64decode(ciphertext), oaep).decode() == "示例平台有限公司"
    assert crypto.decrypt_sensitive(key, ciphertext) == "示例平台有限公司"


def test_a_sensitive_field_is_randomised():
    key = crypto.generate_private_key().public_key()
    assert crypto.encrypt_sensitive(key, "张三") != crypto.encrypt_sensitive(key, "张三")


@pytest.mark.parametrize("ciphertext", ["not base64!", "aGVsbG8=", ""])
def test_what_is_not_a_sensitive_field_for_the_key_is_refused(ciphertext):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_sensitive(crypto.generate_private_key(), ciphertext)


def test_a_sensitive_field_for_another_key_is_refused():
    ciphertext = crypto.encrypt_sensitive(crypto.generate_private_key().public_key(), "张三")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_sensitive(crypto.generate_private_key(), ciphertext)

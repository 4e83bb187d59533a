"""Hypothesis strategies that break a genuine WeChat Pay notification, one plausible mistake or attack at a time.

Each strategy takes the genuine article (body bytes, envelope, header pairs) and draws a mutation of it:
bytes flipped, cut or inserted; a JSON value swapped for a huge, deep, wrongly typed or oddly encoded one;
the sealed resource's fields broken; headers dropped, emptied, duplicated, re-cased or filled with garbage.
Headers are ``(name, value)`` pairs, as on the wire; ``wsgi_environ`` joins repeats with a comma, as
WSGI servers do, so the view sees what it would see behind gunicorn.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from hypothesis import strategies as st

from django_papay import wechatpay

Headers = list[tuple[str, str]]

_SLOT = "\x01papay-fuzz-slot\x01"  # stands in for a raw JSON value while the envelope is serialised
_TOKEN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"  # header names, never "_"

latin1_text = st.binary(max_size=200).map(lambda raw: raw.decode("latin-1"))  # what WSGI hands a view


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _raw(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


# --- JSON values -----------------------------------------------------------------------------

odd_json_values = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "-1", "1e999", "-0.0", "NaN", "Infinity", "[]", "{}", '""']),
    st.integers().map(_raw),
    st.integers(min_value=2**63 - 2, max_value=2**200).map(_raw),
    st.floats().map(_raw),
    st.text(max_size=40).map(_raw),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff", "\u202e", "签约成功", "\x00" * 64]).map(_raw),
    st.sampled_from(['"\\u0000"', '"\\ud800"', '"\\udc00x"', '"\\u"', '"\\x41"', "'single'", "undefined"]),
    st.integers(min_value=70, max_value=70_000).map(lambda n: _raw("x" * n)),  # huge (may pass 64 KiB)
    st.integers(min_value=1, max_value=40_000).map(nested),  # deep nesting, past the recursion limit
    st.integers(min_value=1, max_value=20_000).map(lambda n: '{"a":' * n + "0" + "}" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: "9" * n),  # past int_max_str_digits
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ).map(_raw),
)


# Values a decrypted resource field might hold that WeChat Pay would never send: the limits of our own columns.
odd_resource_values = (
    odd_json_values
    | st.sampled_from(
        [
            "x" * 32,
            "x" * 33,
            "x" * 64,
            "x" * 65,
            "x" * 128,
            "x" * 129,
            "a-b",
            "签约",
            " ",
            "0",
            "1.5",
            "2**63",
            "0001-01-01T00:00:00+08:00",
            "9999-12-31T23:59:59-08:00",
            "2026-13-01T00:00:00+08:00",
            "2026-01-01T00:00:00",
            "2026-02-30T00:00:00+08:00",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01 00:00:00+08:00",
        ]
    ).map(_raw)
    | st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]).map(_raw)
)


def with_raw_value(envelope: dict[str, Any], path: tuple[str, ...], raw: str) -> str:
    """The envelope as compact JSON text with the value at ``path`` replaced by the raw JSON ``raw``."""
    if not path:
        return raw
    changed = copy.deepcopy(envelope)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = _SLOT
    return _raw_compact(changed).replace(_raw(_SLOT), raw)


def without_key(envelope: dict[str, Any], path: tuple[str, ...]) -> str:
    changed = copy.deepcopy(envelope)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target.pop(path[-1], None)
    return _raw_compact(changed)


def _raw_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def envelope_paths(envelope: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]
    for key, value in envelope.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths.extend((key, inner) for inner in value)
    return paths


# --- the sealed resource ---------------------------------------------------------------------


def broken_resource_field(resource: dict[str, str]) -> st.SearchStrategy[tuple[str, str]]:
    """``(field, raw JSON)``: a ciphertext, nonce, associated_data or algorithm that must not open."""
    ciphertext, nonce = resource["ciphertext"], resource["nonce"]
    sealed = base64.b64decode(ciphertext)
    bad_ciphertexts = st.one_of(
        st.sampled_from(
            [
                "",
                "!!!!",
                "====",
                ciphertext.rstrip("="),
                ciphertext + "=",
                ciphertext + "\n",
                ciphertext.replace("+", "-").replace("/", "_"),
                " " + ciphertext,
                ciphertext[::-1],
            ]
        ),
        st.integers(0, 15).map(lambda n: base64.b64encode(sealed[:n]).decode()),  # shorter than the GCM tag
        st.integers(1, len(ciphertext) - 1).map(lambda n: ciphertext[:n]),
        st.integers(0, len(sealed) - 1).map(
            lambda i: base64.b64encode(sealed[:i] + bytes([sealed[i] ^ 1]) + sealed[i + 1 :]).decode()
        ),
        st.text(max_size=30),
    ).map(lambda value: ("ciphertext", _raw(value)))
    bad_nonces = (
        st.one_of(
            st.integers(0, 40).filter(lambda n: n != len(nonce)).map(lambda n: (nonce * 4)[:n]),
            st.sampled_from(
                [
                    "é" * 12,
                    "é" * 6,
                    nonce.lower() if nonce.lower() != nonce else nonce.upper(),
                    "\x00" * 12,
                    nonce[:11] + "\ud800",
                ]
            ),
            st.text(min_size=12, max_size=12),
        )
        .filter(lambda value: value != nonce)
        .map(lambda value: ("nonce", _raw(value)))
    )
    bad_aad = st.sampled_from(["", "entrusT", "certificate", "entrust\x00", "entrust "]).map(
        lambda value: ("associated_data", _raw(value))
    )
    bad_algorithm = st.sampled_from(["aead_aes_256_gcm", "AEAD_AES_128_GCM", "", "AEAD_AES_256_GCM "]).map(
        lambda value: ("algorithm", _raw(value))
    )
    wrong_type = st.tuples(
        st.sampled_from(["ciphertext", "nonce", "associated_data", "algorithm"]),
        st.sampled_from(["null", "0", "[]", "{}", "true", '["x"]']),
    )
    return st.one_of(bad_ciphertexts, bad_nonces, bad_aad, bad_algorithm, wrong_type)


# --- bodies ----------------------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "gb18030", "cesu"]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "cesu":  # lone surrogates written out as UTF-8 would write them: not UTF-8 at all
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf-") else "replace")


@st.composite
def json_mutations(draw: st.DrawFn, envelope: dict[str, Any]) -> bytes:
    """The envelope with one value replaced, a key dropped or repeated, in some encoding."""
    path = draw(st.sampled_from(envelope_paths(envelope)))
    kind = draw(st.sampled_from(["replace", "drop", "repeat"] if path else ["replace"]))
    if kind == "replace":
        text = with_raw_value(envelope, path, draw(odd_json_values))
    elif kind == "drop":
        text = without_key(envelope, path)
    else:  # a repeated key: json.loads keeps the last, other parsers the first
        text = _raw_compact(envelope)[:-1] + f",{_raw(path[0])}:{draw(odd_json_values)}}}"
    encoding = draw(st.sampled_from(ENCODINGS) if draw(st.integers(0, 3)) == 0 else st.just("utf-8"))
    return encode(text, encoding)


@st.composite
def byte_mutations(draw: st.DrawFn, body: bytes) -> bytes:
    """1–3 edits of the raw bytes: cut, flip a bit, insert, delete, overwrite, repeat, pad."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite", "double", "pad", "nul"]))
        if kind == "truncate":
            body = body[:at]
        elif kind == "flip" and at < len(body):
            body = body[:at] + bytes([body[at] ^ (1 << draw(st.integers(0, 7)))]) + body[at + 1 :]
        elif kind == "insert":
            body = body[:at] + draw(st.binary(min_size=1, max_size=16)) + body[at:]
        elif kind == "delete":
            body = body[:at] + body[at + draw(st.integers(1, 64)) :]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            body = body[:at] + chunk + body[at + len(chunk) :]
        elif kind == "double":
            body = body + body
        elif kind == "pad":
            body = (
                draw(st.sampled_from([b"", b" ", b"\n", b"\xef\xbb\xbf"]))
                + body
                + draw(st.sampled_from([b" ", b"\n", b"\r\n", b"\x00", b"}", b",", b"garbage"]))
            )
        elif kind == "nul":
            body = body[:at] + b"\x00" + body[at:]
    return body


def body_mutations(body: bytes, envelope: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(byte_mutations(body), json_mutations(envelope))


def random_bodies(limit: int) -> st.SearchStrategy[bytes]:
    """Random bytes; one time in sixteen, a body within 8 bytes of ``limit``, either side."""
    at_the_limit = st.integers(limit - 8, limit + 8).map(b"{".__mul__)
    return st.integers(0, 15).flatmap(lambda n: at_the_limit if n == 0 else st.binary(max_size=2048))


# --- headers ---------------------------------------------------------------------------------


def _case_variant(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True))
    )


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ]
)
GARBAGE_TIMESTAMPS = [
    "1e9",
    "-1",
    "0",
    "٣",
    "１７",
    "0x10",
    "+{t}",
    " {t}",
    "{t} ",
    "{t}.0",
    "{t}\x00",
    "{t}\t",
    "{t}{t}",
    "99999999999999999999999999",
    "1_000",
    "NaN",
    "",
    " ",
    "{t}, {t}",
]
GARBAGE_SIGNATURE_TYPES = [
    "",
    "WECHATPAY2-SHA256-RSA4096",
    "wechatpay2-sha256-rsa2048",
    " WECHATPAY2-SHA256-RSA2048",
    "WECHATPAY2-SHA256-RSA2048, WECHATPAY2-SHA256-RSA2048",
    "HMAC-SHA256",
    "\x00",
]


@st.composite
def header_mutations(draw: st.DrawFn, headers: Headers) -> Headers:
    """1–4 changes to the header pairs; names compare case-insensitively, as HTTP has them."""
    headers = list(headers)
    timestamp = dict(headers)[wechatpay.TIMESTAMP_HEADER]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(headers) - 1)) if headers else None
        kind = draw(
            st.sampled_from(
                [
                    "drop",
                    "empty",
                    "duplicate",
                    "case",
                    "garbage",
                    "timestamp",
                    "type",
                    "long",
                    "junk",
                    "whitespace",
                    "content_type",
                ]
            )
        )
        if i is None or kind == "junk":
            headers.append((draw(st.text(_TOKEN, min_size=1, max_size=20)), draw(latin1_text)))
            continue
        name, value = headers[i]
        if kind == "drop":
            del headers[i]
        elif kind == "empty":
            headers[i] = (name, "")
        elif kind == "duplicate":
            headers.append((draw(_case_variant(name)), draw(st.sampled_from([value, "", value[::-1]]) | latin1_text)))
        elif kind == "case":
            headers[i] = (draw(_case_variant(name)), value)
        elif kind == "garbage":
            headers[i] = (name, draw(latin1_text))
        elif kind == "timestamp":
            headers = [(n, v) for n, v in headers if n.lower() != wechatpay.TIMESTAMP_HEADER.lower()]
            headers.append((wechatpay.TIMESTAMP_HEADER, draw(st.sampled_from(GARBAGE_TIMESTAMPS)).format(t=timestamp)))
        elif kind == "type":
            headers = [(n, v) for n, v in headers if n.lower() != wechatpay.SIGNATURE_TYPE_HEADER.lower()]
            headers.append((wechatpay.SIGNATURE_TYPE_HEADER, draw(st.sampled_from(GARBAGE_SIGNATURE_TYPES))))
        elif kind == "long":
            headers[i] = (name, value * draw(st.integers(2, 200)))
        elif kind == "content_type":
            headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
            headers.append(("Content-Type", draw(content_types)))
        elif kind == "whitespace":
            headers[i] = (name, draw(st.sampled_from([" {}", "{} ", "\t{}", "{}\x00", "{}\r"])).format(value))
    return headers


remote_addrs = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "fe80::1%eth0",
            "fe80::1%25",
            "",
            "unknown",
            "999.1.1.1",
            "1.2.3.4, 5.6.7.8",
            "1.2.3.4:5678",
            "[::1]",
            " 127.0.0.1",
            "127.0.0.1\x00",
            "١٢٧.٠.٠.١",
            "2001:db8::1%" + "x" * 300,
        ]
    ),
    latin1_text,
)


def header_value(headers: Headers, name: str) -> str | None:
    """What the view reads for ``name``: repeated headers joined with a comma, as a WSGI server joins them."""
    values = [v for n, v in headers if n.lower() == name.lower()]
    return ",".join(values) if values else None


# Framing and routing headers the server or Django acts on before any view runs.
NOT_FOR_THE_VIEW = frozenset({"content-length", "host", "transfer-encoding"})


def wsgi_environ(headers: Headers) -> dict[str, str]:
    """The headers as a WSGI server puts them in the environ (``HTTP_WECHATPAY_SERIAL`` and so on)."""
    environ: dict[str, str] = {}
    for name in dict.fromkeys(n.lower() for n, _ in headers if n.lower() not in NOT_FOR_THE_VIEW):
        key = name.upper().replace("-", "_")
        key = key if key == "CONTENT_TYPE" else "HTTP_" + key
        environ[key] = header_value(headers, name) or ""
    return environ

"""Fuzzing the notify view: genuine notifications from the sandbox, broken by hypothesis, posted to the real view.

Every example, however odd: no 5xx and no exception escapes; exactly one new Notification row (every
delivery logged); and the contracts change only when the delivery is genuine — anything else is a 4xx
that changes nothing. Each example runs in a savepoint rolled back afterwards, so all start from the same
pre-signed contract. ``PAPAY_FUZZ_EXAMPLES`` is the total across the tests (the README has the long run).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from django_papay import crypto, views
from django_papay.models import Contract, Notification
from django_papay.sandbox.outgoing import OutgoingNotification as Built
from django_papay.sandbox.outgoing import compact_json
from django_papay.wechatpay import SIGNED_HEADERS as REQUIRED_HEADERS

from . import notify_mutations as mutate

# Hypothesis keeps a cache (and, were it on, its example database) out of the work tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "django-papay-hypothesis"))

pytestmark = pytest.mark.django_db
NOTIFY = reverse("django_papay:notify")
EXAMPLES = int(os.environ.get("PAPAY_FUZZ_EXAMPLES", "2500"))

settings.register_profile(
    "papay-fuzz",
    deadline=None,  # a 64 KiB body on a busy CI machine may take a while; time is not what is tested
    database=None,
    print_blob=True,
    # The fixtures (a pre-signed contract, its genuine notification) are made once per test on purpose:
    # each example runs in a savepoint rolled back afterwards. Large and slow inputs are the point.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(share: float) -> settings:
    """The profile, with ``share`` of PAPAY_FUZZ_EXAMPLES for one test."""
    return settings(settings.get_profile("papay-fuzz"), max_examples=max(10, round(EXAMPLES * share)))


@pytest.fixture
def genuine(presigned_contract, sandbox) -> Built:
    return sandbox.sign_notification(presigned_contract.out_contract_code)


@dataclasses.dataclass(frozen=True)
class Baseline:
    untouched: list[dict]  # the contracts before any delivery
    signed: list[dict]  # as the genuine notification leaves them (updated_at aside)


@pytest.fixture
def baseline(genuine) -> Baseline:
    untouched = _contracts()
    with transaction.atomic():
        assert _post(Client(), genuine.body, list(genuine.headers.items())).status_code == 204
        signed = _settled(_contracts())
        transaction.set_rollback(True)
    return Baseline(untouched, signed)


def _contracts() -> list[dict]:
    return list(Contract.objects.order_by("pk").values())


def _settled(contracts: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in contracts]


def _post(client: Client, body: bytes, headers: mutate.Headers, remote_addr: str = "127.0.0.1"):
    return client.generic(
        "POST", NOTIFY, body, content_type="application/json", REMOTE_ADDR=remote_addr, **mutate.wsgi_environ(headers)
    )


def _is_genuine(body: bytes, headers: mutate.Headers, genuine: Built) -> bool:
    """Byte for byte the signed body, and the very header values WeChat Pay signed (names in any case)."""
    return body == genuine.body and all(mutate.header_value(headers, n) == genuine.headers[n] for n in REQUIRED_HEADERS)


def _deliver_and_check(
    body: bytes, headers: mutate.Headers, baseline: Baseline, *, expect: str, remote_addr: str = "127.0.0.1"
) -> None:
    """POST one delivery in a savepoint rolled back afterwards, and check the invariants.

    ``expect``: "genuine" — 204, applied; "refused" — a 4xx that changes nothing; "signed" — signed with
    WeChat Pay's key, so never a 401: a 4xx that changes nothing, or a 204 that leaves the contracts as
    they were or, when applied, as the genuine notification does; "sealed" — as "signed", except that
    what an applied resource of the test's own making does to the contracts is not predicted.
    """
    with transaction.atomic():
        response = _post(Client(enforce_csrf_checks=True), body, headers, remote_addr)
        status = response.status_code
        event(f"{expect}: HTTP {status}")  # pytest --hypothesis-show-statistics tallies these
        assert status < 500, response.content
        deliveries, contracts = list(Notification.objects.all()), _contracts()
        assert len(deliveries) == 1, "every delivery is logged, once"
        delivery = deliveries[0]
        assert bool(delivery.body) == (0 < len(body) <= views.MAX_BODY_BYTES)
        if expect == "genuine":
            assert (status, delivery.result) == (204, "applied"), response.content
            assert _settled(contracts) == baseline.signed
        elif status == 204 and expect in ("signed", "sealed"):
            assert delivery.processed and delivery.result in ("applied", "duplicate", "ignored", "unknown_event")
            if contracts != baseline.untouched:
                assert delivery.result == "applied"
                assert expect == "sealed" or _settled(contracts) == baseline.signed
        else:
            assert 400 <= status < 500, (status, response.content)
            assert status != 401 or expect == "refused", "a good signature is never refused as unsigned"
            assert (delivery.result, delivery.processed) == ("rejected", False)
            assert response.json()["code"] == "FAIL"
            assert contracts == baseline.untouched
        transaction.set_rollback(True)


@fuzz(0.3)
@given(data=st.data())
def test_mutated_body_under_genuine_headers_is_refused_and_logged(genuine, baseline, data):
    body = data.draw(mutate.body_mutations(genuine.body, genuine.envelope), label="body")
    fresh = genuine.signed_again()  # a fresh timestamp, so a long run never goes stale
    expect = "genuine" if body == fresh.body else "refused"
    _deliver_and_check(body, list(fresh.headers.items()), baseline, expect=expect)


@fuzz(0.25)
@given(data=st.data())
def test_mutated_headers_are_refused_unless_they_say_what_was_signed(genuine, baseline, data):
    fresh = genuine.signed_again()
    headers = data.draw(mutate.header_mutations(list(fresh.headers.items())), label="headers")
    remote_addr = data.draw(mutate.remote_addrs, label="REMOTE_ADDR")
    expect = "genuine" if _is_genuine(fresh.body, headers, fresh) else "refused"
    _deliver_and_check(fresh.body, headers, baseline, expect=expect, remote_addr=remote_addr)


@fuzz(0.2)
@given(data=st.data())
def test_signed_but_broken_envelope_is_refused_or_is_the_genuine_event(genuine, baseline, data):
    """Signed with WeChat Pay's key, so what is tested is parsing the envelope and opening the resource."""
    body = data.draw(
        st.one_of(
            mutate.json_mutations(genuine.envelope),
            mutate.broken_resource_field(genuine.envelope["resource"]).map(
                lambda change: mutate.with_raw_value(genuine.envelope, ("resource", change[0]), change[1]).encode(
                    "utf-8", "surrogatepass"
                )
            ),
        ),
        label="body",
    )
    signed = dataclasses.replace(genuine, body=body).signed_again()
    _deliver_and_check(body, list(signed.headers.items()), baseline, expect="signed")


@fuzz(0.15)
@given(data=st.data())
def test_sealed_odd_resource_is_refused_or_acknowledged(genuine, baseline, keys, data):
    """Signed and sealed with the real keys, so what is tested is what the decrypted fields can do."""
    field = data.draw(st.sampled_from([*genuine.resource, "attach", ""]), label="field")
    plaintext = mutate.with_raw_value(
        genuine.resource, (field,) if field else (), data.draw(mutate.odd_resource_values, label="value")
    )
    sealed = {**genuine.envelope["resource"]}
    sealed["ciphertext"] = crypto.encrypt(
        keys.apiv3_key, sealed["nonce"], plaintext.encode("utf-8", "surrogatepass"), sealed["associated_data"]
    )
    signed = dataclasses.replace(genuine, body=compact_json({**genuine.envelope, "resource": sealed})).signed_again()
    _deliver_and_check(signed.body, list(signed.headers.items()), baseline, expect="sealed")


@fuzz(0.1)
@given(
    body=mutate.random_bodies(views.MAX_BODY_BYTES),
    headers=st.lists(
        st.tuples(st.sampled_from([*REQUIRED_HEADERS, "Content-Type", "Request-ID"]), mutate.latin1_text), max_size=8
    ),
)
def test_random_bytes_and_headers_are_refused_and_logged(baseline, body, headers):
    _deliver_and_check(body, headers, baseline, expect="refused")

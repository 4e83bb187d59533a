"""The notification crypto path — verify + decrypt + parse — against bare ``cryptography`` calls.

    python benchmarks/notify_crypto.py [--count 2000] [--batch 100] [--rounds 15]

Builds ``--count`` genuine ECOMMERCE_ENTRUST.SIGN notifications with the sandbox (each its own body,
nonce, timestamp and signature), then times two ways of opening every one of them. Each round walks the
notifications in batches of ``--batch`` and opens every batch both ways back to back (alternating which
goes first), so machine noise hits both alike. A path's figure is the sum over batches of each batch's
fastest round (CPU time of this thread): the cost with as little of the machine's noise as it allowed.

- django-papay: ``notifications.verify(headers, body, ...)`` — header checks, serial lookup, the 300-second
  clock, the SIGNTEST probe, SHA256withRSA over ``TIMESTAMP\\nNONCE\\nBODY\\n``, the envelope, then
  AEAD_AES_256_GCM and the resource JSON: a ``dict`` of the decrypted resource;
- raw: the fewest calls that give the same ``dict`` — build the message, RSA PKCS#1 v1.5 SHA-256 verify,
  ``json.loads`` the envelope, AES-GCM decrypt (one ``AESGCM`` made up front), ``json.loads`` the resource;
  no checks at all.

The target is at most 1.10× the raw time, by those figures; the ratio of medians is printed
too. The typed
``contract_event`` (RFC 3339 times, field checks) that the notify view runs next is timed too, for
information. No Django settings, database or network are involved.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import tempfile
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from report import machine, median, verdict

from django_papay import crypto, notifications
from django_papay.sandbox import ensure_demo_keys

TARGET = 1.10

Case = tuple[dict[str, str], bytes]


def build_cases(count: int) -> tuple[list[Case], dict, bytes]:
    """``count`` signed notifications, the public keys by serial, and the APIv3 key."""
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder:
        keys = ensure_demo_keys(folder)  # made up at run time; gone with the folder
        sandbox = keys.sandbox()  # not started: it only builds and signs notifications here
        public_key = crypto.load_public_key(crypto.read_key_file(keys.wechatpay_public_key_path))
    cases = []
    for _ in range(count):
        code = uuid.uuid4().hex
        notification = sandbox.sign_notification(code, plan_id=12535, appid="wxd678efh567hg6787", url="https://x/")
        cases.append((notification.headers, notification.body))
    return cases, {keys.wechatpay_public_key_id: public_key}, keys.apiv3_key.encode()


def raw_path(public_keys: dict, apiv3_key: bytes) -> Callable[[Case], dict]:
    (public_key,) = public_keys.values()
    aesgcm = AESGCM(apiv3_key)

    def open_raw(case: Case) -> dict:
        headers, body = case
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
        public_key.verify(
            base64.b64decode(headers["Wechatpay-Signature"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
        resource = json.loads(body)["resource"]
        plaintext = aesgcm.decrypt(
            resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]), resource["associated_data"].encode()
        )
        return json.loads(plaintext)

    return open_raw


def library_path(public_keys: dict, apiv3_key: bytes) -> Callable[[Case], dict]:
    def open_verified(case: Case) -> dict:
        return notifications.verify(case[0], case[1], public_keys=public_keys, apiv3_key=apiv3_key).resource

    return open_verified


def library_typed_path(public_keys: dict, apiv3_key: bytes) -> Callable[[Case], object]:
    def open_typed(case: Case) -> object:
        verified = notifications.verify(case[0], case[1], public_keys=public_keys, apiv3_key=apiv3_key)
        return notifications.contract_event(verified)

    return open_typed


def one_pass(path: Callable[[Case], object], cases: list[Case]) -> float:
    """CPU seconds to open every case once, with the garbage collector off (as ``timeit`` does).

    CPU time of this thread, not wall time: on a shared machine the time the scheduler gives other
    processes mid-pass is not counted against whichever path happened to be running.
    """
    gc.collect()
    gc.disable()
    try:
        started = time.thread_time()
        for case in cases:
            path(case)
        return time.thread_time() - started
    finally:
        gc.enable()


def measure(paths: dict, batches: list[list[Case]], rounds: int, count: int) -> tuple[dict, dict]:
    """Per path, CPU seconds per notification: the sum of each batch's fastest round, and of its median."""
    names = list(paths)
    samples: dict[str, list[list[float]]] = {name: [[] for _ in batches] for name in names}
    for round_no in range(rounds):
        for index, batch in enumerate(batches):
            order = names if (round_no + index) % 2 == 0 else names[::-1]  # alternate who goes first
            for name in order:
                samples[name][index].append(one_pass(paths[name], batch))
    best = {name: sum(min(batch) for batch in samples[name]) / count for name in names}
    typical = {name: sum(median(batch) for batch in samples[name]) / count for name in names}
    return best, typical


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="notifications (default 2000)")
    parser.add_argument("--batch", type=int, default=100, help="notifications per timed batch (default 100)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds over all batches (default 15)")
    parser.add_argument("--repeats", type=int, default=3, help="whole measurements; the verdict is their median")
    options = parser.parse_args()

    print("notify_crypto — notification verify + decrypt + parse vs raw cryptography")
    print(f"machine: {machine()}")
    started = time.time()
    cases, public_keys, apiv3_key = build_cases(options.count)
    paths = {
        "raw": raw_path(public_keys, apiv3_key),
        "django-papay": library_path(public_keys, apiv3_key),
        "django-papay + contract_event": library_typed_path(public_keys, apiv3_key),
    }
    # Same inputs, same answers: both must open every notification to the same resource.
    for case in cases:
        if paths["raw"](case) != paths["django-papay"](case):
            raise SystemExit("the two paths disagree on a notification")

    names = list(paths)
    batches = [cases[start : start + options.batch] for start in range(0, len(cases), options.batch)]
    ratios = []
    for repeat in range(options.repeats):  # the whole measurement again: one run's noise is not a verdict
        best, typical = measure(paths, batches, options.rounds, len(cases))
        ratios.append(best["django-papay"] / best["raw"])
        print(
            f"repeat {repeat + 1} of {options.repeats}: {len(cases)} notifications in batches of {options.batch}, "
            f"{options.rounds} rounds, CPU time per notification: fastest (median)"
        )
        for name in names:
            print(
                f"  {name:31s} {best[name] * 1e6:6.1f} µs  {1 / best[name]:7.0f} ops/s   "
                f"({typical[name] * 1e6:.1f} µs, {1 / typical[name]:.0f} ops/s)"
            )
        print(
            f"  ratio (fastest): {ratios[-1]:.2f}×; of medians: {typical['django-papay'] / typical['raw']:.2f}×; "
            f"with contract_event: {best['django-papay + contract_event'] / best['raw']:.2f}× (information)"
        )
    if time.time() - started > 250:
        print("warning: the run took over 250 s; early notifications neared WeChat Pay's 300 s window")
    print(f"ratios of the repeats: {', '.join(f'{ratio:.2f}×' for ratio in ratios)}")
    verdict("django-papay / raw (fastest, median of the repeats)", median(ratios), TARGET, at_most=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

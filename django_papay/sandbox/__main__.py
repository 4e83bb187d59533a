"""``python -m django_papay.sandbox --keys-dir DIR``: serve a demo WeChat Pay on loopback until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from ..loopback import is_loopback_host
from .keys import ensure_demo_keys
from .tls import self_signed_certificate


def loopback_host(value: str) -> str:
    """Accept only loopback addresses: the sandbox signs with made-up keys and must not face a network."""
    if not is_loopback_host(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a loopback address (use 127.0.0.1, ::1 or localhost)")
    return "127.0.0.1" if value == "localhost" else value


def rewrite_rule(value: str) -> tuple[str, str]:
    """``PREFIX=REPLACEMENT``, e.g. ``https://papay.example/=http://127.0.0.1:8000/``."""
    prefix, separator, replacement = value.partition("=")
    if not separator or not prefix or not replacement:
        raise argparse.ArgumentTypeError(f"{value!r} is not PREFIX=REPLACEMENT")
    return prefix, replacement


DESCRIPTION = "Serve a WeChat Pay of your own on loopback, with made-up keys, until stopped (Ctrl-C)."
EPILOG = """\
example, from the folder manage.py is in (your PAPAY settings read the same keys folder):
  python -m django_papay.sandbox --keys-dir "$PWD/var/sandbox-keys" --port 8765 \\
      --notify-rewrite https://shop.example.com=http://127.0.0.1:8000

while it runs:
  play the user:   curl -X POST http://127.0.0.1:8765/sandbox/contracts/<out_contract_code>/sign (or /terminate)
  fail next call:  curl -X POST http://127.0.0.1:8765/sandbox/faults -d '{"fault": "system_error"}'
                   (ratelimit, system_error, system_error_after, unavailable, timeout, reset, bad_signature,
                   unknown_serial, not_json, truncated, stale_timestamp, other_contract, late_arrival)
"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_papay.sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keys-dir",
        required=True,
        metavar="DIR",
        help="folder of demo keys, created if missing; give your PAPAY settings the same folder (an absolute path "
        "is safest: a relative one is read from where the shell stands)",
    )
    parser.add_argument(
        "--host", type=loopback_host, default="127.0.0.1", help="loopback address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default %(default)s; 0 picks a free one)"
    )
    parser.add_argument(
        "--notify-rewrite",
        type=rewrite_rule,
        action="append",
        default=[],
        metavar="PREFIX=REPLACEMENT",
        help="deliver notifications for URLs starting with PREFIX to REPLACEMENT instead, playing the "
        "TLS proxy in front of your site, e.g. https://papay.example/=http://127.0.0.1:8000/ (repeatable)",
    )
    parser.add_argument(
        "--termination-notify-url",
        metavar="URL",
        help="the deduction template's termination URL (default: the pre-sign notify_url)",
    )
    parser.add_argument(
        "--tls",
        metavar="DIR",
        help="serve https with a self-signed certificate for 127.0.0.1 made in DIR; clients trust it through "
        'DIR/sandbox-cert.pem (django-papay: PAPAY["CA_BUNDLE"])',
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep pre-signs and contracts in this JSON file, saved after each change and loaded at start, "
        "so a restarted sandbox still knows them (default: in memory only)",
    )
    parser.add_argument(
        "--response-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before every answer, like WeChat Pay's distance from you (default %(default)s)",
    )
    parser.add_argument(
        "--fault-delay",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the timeout fault holds its answer and late_arrival its request (default 3; a deduct call "
        "waits DEDUCT_TIMEOUT, 60 s, so set this above it to see a charge time out)",
    )
    parser.add_argument(
        "--notify-contract-id",
        action="store_true",
        help="put contract_id into SIGN and TERMINATE notifications, as one SDK expects; by default they carry "
        "none, as WeChat Pay documents, and the merchant gets it from the contract query",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    keys = ensure_demo_keys(options.keys_dir)
    tls = self_signed_certificate(options.tls) if options.tls else None
    sandbox = keys.sandbox(host=options.host, port=options.port, tls=tls, state_file=options.state)
    sandbox.notify_rewrite = dict(options.notify_rewrite)
    sandbox.termination_notify_url = options.termination_notify_url
    sandbox.response_delay = options.response_delay
    sandbox.notify_contract_id = options.notify_contract_id
    if options.fault_delay is not None:
        sandbox.fault_delay = options.fault_delay
    with sandbox:
        print(f"WeChat Pay sandbox for mchid {keys.mchid} listening on {sandbox.url}", flush=True)
        if options.state:
            print(f"keeping pre-signs and contracts in {options.state}", flush=True)
        if tls is not None:
            print(f"its certificate (trust it as a CA bundle): {tls.certfile}", flush=True)
        print(
            f"play the user: POST {sandbox.url}/sandbox/contracts/<out_contract_code>/sign (or /terminate); "
            f"GET {sandbox.url}/sandbox/contracts lists the pre-signed ones",
            flush=True,
        )
        print(
            f"make WeChat Pay fail the next call: POST {sandbox.url}/sandbox/faults "
            """-d '{"fault": "system_error"}' (or ratelimit, unavailable, timeout, reset, bad_signature, …)""",
            flush=True,
        )
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

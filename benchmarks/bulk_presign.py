"""Bulk pre-sign of 200 contracts against the sandbox over HTTPS, against a client that connects per call.

    python benchmarks/bulk_presign.py [--contracts 200] [--rounds 3] [--database postgres|sqlite]

What it does, all on loopback:

1. makes up merchant and WeChat Pay keys in a temporary folder and starts the sandbox in its own process
   over HTTPS, with a self-signed certificate (``python -m django_papay.sandbox --tls DIR``); the client
   trusts it through ``PAPAY["CA_BUNDLE"]`` and nothing else;
2. (re)creates and migrates the database — PostgreSQL ``papay_bench_presign`` at 127.0.0.1:5432 (user
   postgres, trust auth; PGHOST/PGPORT/PGUSER override; dropped at the end), or with ``--database sqlite``
   a file in the temporary folder — and creates the contracts;
3. times, round after round and alternating which goes first, pre-signing ``--contracts`` fresh contracts:

   - **django-papay**: ``services.run_many(services.PRESIGN, contracts)`` — ``PAPAY["BULK_CONCURRENCY"]``
     (default 4) calls in flight over the client's one ``requests.Session``, whose TLS connections are kept;
   - **baseline**: the same contracts one after another, each call through a new ``requests.Session``, so a
     new TCP connection and TLS handshake per call; otherwise the very same work — ``PRESIGN.prepare``,
     the signed request, the verified answer, ``PRESIGN.apply`` writing the contract;
   - for information, ``run_many`` with one call in flight: connection reuse alone, without concurrency;

4. checks every contract ended pre-signed, and prints each way's time and the speed-up.

The target: django-papay at least 3× faster than the baseline (fastest round against fastest round).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from processes import start_sandbox, stop
from report import machine, median, verdict

TARGET = 3.0
WARMUP = 10
POSTGRES_DATABASE = "papay_bench_presign"


def postgres_settings(dbname: str) -> dict:
    return {
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "NAME": dbname,
    }


@contextlib.contextmanager
def database(kind: str, folder: str):
    """Django's DATABASES["default"] for ``kind``: a fresh PostgreSQL database (dropped after), or a SQLite file."""
    if kind == "sqlite":
        yield {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(folder) / "bench.sqlite3")}
        return
    import psycopg

    server = postgres_settings("postgres")
    admin = psycopg.connect(
        host=server["HOST"],
        port=server["PORT"],
        user=server["USER"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{POSTGRES_DATABASE}"')
        try:
            yield {"ENGINE": "django.db.backends.postgresql", **postgres_settings(POSTGRES_DATABASE)}
        finally:
            from django.db import connections

            connections.close_all()
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)')


def configure_django(keys, db: dict, base_url: str, ca_bundle: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="Asia/Shanghai",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_papay"],
        DATABASES={"default": db},
        PAPAY={
            "MCHID": keys.mchid,
            "MERCHANT_SERIAL_NO": keys.merchant_serial_no,
            "MERCHANT_PRIVATE_KEY_PATH": keys.merchant_private_key_path,
            "APIV3_KEY": keys.apiv3_key,
            "APPID": "wxd678efh567hg6787",
            "NOTIFY_URL": "https://bench.example/papay/notify/",
            "WECHATPAY_PUBLIC_KEY_PATH": keys.wechatpay_public_key_path,
            "WECHATPAY_PUBLIC_KEY_ID": keys.wechatpay_public_key_id,
            "BASE_URL": base_url,
            "CA_BUNDLE": ca_bundle,
        },
    )
    django.setup()


def baseline(contracts: list) -> None:
    """Each pre-sign through a new Session: same prepare, signing, verification and apply; a new connection."""
    import requests

    from django_papay import conf
    from django_papay.client import WeChatPayClient
    from django_papay.services import PRESIGN
    from django_papay.services.connections import key_source

    config = conf.client_settings()
    for contract in contracts:
        call = PRESIGN.prepare(contract)
        with requests.Session() as session:
            answer = WeChatPayClient(config, session=session, keys=key_source(config)).request(
                call.method, call.path, call.payload
            )
        PRESIGN.apply(contract, call, answer)


def bulk(contracts: list, concurrency: int | None = None) -> None:
    from django_papay.services import PRESIGN, run_many

    failed = [outcome for outcome in run_many(PRESIGN, contracts, concurrency=concurrency) if not outcome.ok]
    if failed:
        raise SystemExit(f"{len(failed)} pre-signs failed, e.g. {failed[0].error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=200, help="contracts per timed run (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating which way goes first")
    parser.add_argument(
        "--database",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="where the contracts live (default postgres)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the sandbox waits this long before each answer, as a distant WeChat Pay would "
        "(default 0: loopback, where only CPU counts)",
    )
    options = parser.parse_args()

    print("bulk_presign — run_many(PRESIGN) over HTTPS vs one new connection per call")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder, contextlib.ExitStack() as cleanup:
        from django_papay.sandbox import ensure_demo_keys

        keys_dir, tls_dir = os.path.join(folder, "keys"), os.path.join(folder, "tls")
        keys = ensure_demo_keys(keys_dir)  # made up at run time; gone with the folder
        sandbox, url = start_sandbox(keys_dir, latency_ms=options.latency_ms, tls_dir=tls_dir)
        cleanup.callback(stop, sandbox)
        db = cleanup.enter_context(database(options.database, folder))
        configure_django(keys, db, url, os.path.join(tls_dir, "sandbox-cert.pem"))
        from django.core.management import call_command

        from django_papay import conf
        from django_papay.models import Contract

        call_command("migrate", verbosity=0)

        def fresh(count: int) -> list:
            return [
                Contract.objects.create(plan_id=12535, contract_display_account="138****8888") for _ in range(count)
            ]

        ways: dict[str, Callable[[list], None]] = {
            "django-papay run_many": bulk,
            "baseline (new connection per call)": baseline,
            "run_many, 1 in flight (information)": lambda contracts: bulk(contracts, concurrency=1),
        }
        for way in ways.values():  # warm-up: imports, key parsing, the first handshakes
            way(fresh(WARMUP))
        print(
            f"sandbox at {url} (self-signed, trusted through PAPAY['CA_BUNDLE']); {options.database}; "
            f"BULK_CONCURRENCY {conf.bulk_concurrency()}; answers delayed {options.latency_ms:g} ms"
        )

        seconds: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}  # this process, all its threads
        names = list(ways)
        for round_no in range(options.rounds):
            for name in names if round_no % 2 == 0 else names[::-1]:
                contracts = fresh(options.contracts)
                started, cpu_started = time.perf_counter(), time.process_time()
                ways[name](contracts)
                seconds[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
        total = WARMUP * len(ways) + options.rounds * options.contracts * len(ways)
        presigned = Contract.objects.filter(status=Contract.Status.PRESIGNED).count()

    print(
        f"{options.contracts} pre-signs per run, {options.rounds} rounds: fastest (median); "
        "this process's CPU per contract"
    )
    for name in names:
        best = min(seconds[name])
        print(
            f"  {name:38s} {best:6.2f} s  {best / options.contracts * 1000:5.1f} ms/contract  "
            f"({median(seconds[name]):.2f} s)  CPU {median(cpu[name]) / options.contracts * 1000:4.1f} ms"
        )
    print(f"  contracts pre-signed: {presigned} of {total}")
    if presigned != total:
        print("FAILED: not every contract was pre-signed")
        return 1
    verdict("speed-up over the baseline", min(seconds[names[1]]) / min(seconds[names[0]]), TARGET, at_most=False)
    print(f"  of which connection reuse alone (1 in flight): {min(seconds[names[1]]) / min(seconds[names[2]]):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

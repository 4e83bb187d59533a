"""The full notify request through gunicorn on PostgreSQL, against a bare Django view that writes one row.

    python benchmarks/notify_throughput.py [--requests 1500] [--rounds 5] [--concurrency 8] [--on 3.11/5.2,3.13/6.1]

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; PGHOST/PGPORT/PGUSER override) and
gunicorn (the ``bench`` extra). What it does, all on loopback:

1. makes up merchant and WeChat Pay keys in a temporary folder, (re)creates the database
   ``papay_bench`` and migrates it (``bench_site``: django_papay plus a one-table app);
2. creates one pre-signed contract per notification and builds every ECOMMERCE_ENTRUST.SIGN notification
   up front (unique ids, signed and sealed by the sandbox's builder), so the load client does no crypto;
3. starts gunicorn (gthread: 2 workers × 4 threads for 2 cores, persistent database connections) serving
   both ``/papay/notify/`` (django-papay's view: store the delivery, verify, decrypt, apply under a row
   lock, answer 204) and ``/bare/`` (read the body, insert one row, answer 204), behind the same middleware;
4. drives them in turn from ``--concurrency`` keep-alive connections, ``--requests`` requests a phase,
   ``--rounds`` rounds alternating which goes first, after a warm-up of each; the bare view is sent the
   same headers and bodies;
5. checks every answer was 204 and every contract ended signed, prints req/s, p50 and p99 latency,
   CPU per request (load client, gunicorn, PostgreSQL: on 2 cores the ratio is a ratio of CPU sums) and
   the ratio of each round and their median;
6. then a flood of forged deliveries (the same bodies signed with a stranger's key: 401, one INSERT
   each) against the bare view, in the same way; stops gunicorn and drops the database.

The targets: the notify view at least 0.55× the bare view's throughput, forged
deliveries at least 0.8× (medians of the rounds). ``--on`` runs all of it under each Python/Django pair
in turn, each in a virtualenv of its own (``versions.py``), and prints both figures of each at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from report import machine, median, percentile, verdict
from versions import run_on

HERE = Path(__file__).resolve().parent
DATABASE = os.environ.get("PAPAY_BENCH_DATABASE", "papay_bench")  # another name keeps parallel runs apart
PLAN_ID = 12535
APPID = "wxd678efh567hg6787"
NOTIFY_PATH, BARE_PATH = "/papay/notify/", "/bare/"
WORKERS, THREADS = 2, 4
WARMUP = 100
TARGET = 0.55
FORGED_TARGET = 0.8
WINDOW = 300  # WeChat Pay's clock window: every notification must arrive within it of being signed

Request = tuple[dict[str, str], bytes]


@dataclass
class Phase:
    """One endpoint driven once: wall time, and each request's status and latency (seconds)."""

    seconds: float = 0.0
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    retried: int = 0
    server_cpu: float = 0.0  # CPU seconds the gunicorn workers spent (0 where /proc is not there)
    database_cpu: float = 0.0  # ... and the PostgreSQL backends serving them, with the WAL writer
    client_cpu: float = 0.0  # ... and this process, the load client (nothing else runs in it meanwhile)

    @property
    def rate(self) -> float:
        return len(self.statuses) / self.seconds


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process, from /proc (Linux); missing processes are left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def processes(matches) -> list[int]:
    """Pids of the processes whose /proc entry ``matches(stat_fields, cmdline)``."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if matches(stat, cmdline):
            pids.append(int(entry.name))
    return pids


def server_processes(gunicorn_pid: int) -> tuple[list[int], list[int]]:
    """The gunicorn workers (children of the master we started), and the PostgreSQL backends of our database
    with the WAL writer: a commit that does not wait for the disk (a forged delivery's) leaves it the flush."""
    workers = processes(lambda stat, cmdline: stat[1] == str(gunicorn_pid))
    ours = f" {DATABASE} ".encode()  # a backend's title: "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE"
    backends = processes(
        lambda stat, cmdline: (
            cmdline.startswith(b"postgres: ") and (ours in cmdline or cmdline.rstrip(b"\x00 ").endswith(b"walwriter"))
        )
    )
    return workers, backends


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


def recreate_database() -> None:
    with postgres() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')


def drop_database() -> None:
    with postgres() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def prepare(keys, count: int) -> list[Request]:
    """``count`` pre-signed contracts in the database and a SIGN notification for each."""
    from django.utils import timezone

    from django_papay.models import Contract

    codes = [uuid.uuid4().hex for _ in range(count)]
    now = timezone.now()
    Contract.objects.bulk_create(
        Contract(
            out_contract_code=code,
            plan_id=PLAN_ID,
            appid=APPID,
            contract_display_account="138****8888",
            status=Contract.Status.PRESIGNED,
            pre_entrustweb_id=uuid.uuid4().hex,
            presigned_at=now,
            presign_channel=Contract.Channel.APP,
            mchid=keys.mchid,
        )
        for code in codes
    )
    sandbox = keys.sandbox()  # not started: it only builds, seals and signs here
    notifications = (
        sandbox.sign_notification(code, plan_id=PLAN_ID, appid=APPID, url="https://bench.example" + NOTIFY_PATH)
        for code in codes
    )
    return [(n.headers, n.body) for n in notifications]


def start_gunicorn(port: int, keys_dir: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_site.settings",
        "PAPAY_BENCH_KEYS": keys_dir,
        "PAPAY_BENCH_DATABASE": DATABASE,
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "bench_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
    ]
    server = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}; see {log}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", BARE_PATH)
            connection.getresponse().read()  # 405: it answers
            connection.close()
            return server
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(server)
    raise SystemExit(f"gunicorn did not answer within 30 s; see {log}")


def stop_gunicorn(server: subprocess.Popen) -> None:
    """SIGTERM to the master we started (it stops its workers), SIGKILL to its group if it lingers."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)  # its own session: the master and its workers only
        server.wait(timeout=5)


def drive(port: int, path: str, requests: list[Request], concurrency: int, gunicorn_pid: int) -> Phase:
    """POST every request to ``path`` from ``concurrency`` keep-alive connections; return the phase."""
    phase = Phase()
    workers, backends = server_processes(gunicorn_pid)
    cpu_before = cpu_seconds(workers + backends)
    client_before = time.process_time()
    results: list[tuple[int, float] | None] = [None] * len(requests)
    queue = iter(enumerate(requests))
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)

    def post(connection: http.client.HTTPConnection, headers: dict[str, str], body: bytes) -> int:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ready.wait()
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            index, (headers, body) = item
            started = time.perf_counter()
            try:
                status = post(connection, headers, body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection as we wrote: once more, on a new one.
                connection.close()
                with lock:
                    phase.retried += 1
                status = post(connection, headers, body)
            results[index] = (status, time.perf_counter() - started)
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    phase.client_cpu = time.process_time() - client_before
    workers, backends = server_processes(gunicorn_pid)  # backends may have been opened meanwhile
    cpu_after = cpu_seconds(workers + backends)
    used = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
    phase.server_cpu = sum(used[pid] for pid in workers if pid in used)
    phase.database_cpu = sum(used[pid] for pid in backends if pid in used)
    if any(result is None for result in results):
        raise SystemExit(f"{path}: some requests got no answer")
    phase.statuses = [status for status, _ in results]
    phase.latencies = [seconds for _, seconds in results]
    return phase


def summarize(name: str, phases: list[Phase]) -> float:
    count = sum(len(phase.statuses) for phase in phases)
    seconds = sum(phase.seconds for phase in phases)
    latencies = [latency for phase in phases for latency in phase.latencies]
    rounds = ", ".join(f"{len(phase.statuses) / phase.seconds:.0f}" for phase in phases)
    server_ms = sum(phase.server_cpu for phase in phases) / count * 1000
    database_ms = sum(phase.database_cpu for phase in phases) / count * 1000
    client_ms = sum(phase.client_cpu for phase in phases) / count * 1000
    print(
        f"  {name:28s} {count / seconds:7.0f} req/s  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
        f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   (rounds: {rounds} req/s)"
    )
    print(
        f"  {'':28s} CPU per request: client {client_ms:.2f} ms, gunicorn {server_ms:.2f} ms, "
        f"PostgreSQL {database_ms:.2f} ms; sum {client_ms + server_ms + database_ms:.2f} ms"
    )
    return count / seconds


def round_ratios(label: str, ours: list[Phase], bare: list[Phase]) -> float:
    """Print each round's ratio (both measured back to back) and return their median."""
    ratios = [mine.rate / theirs.rate for mine, theirs in zip(ours, bare, strict=True)]
    print(f"  {label} per round: {', '.join(f'{ratio:.2f}×' for ratio in ratios)}")
    return median(ratios)


def forge(requests: list[Request]) -> list[Request]:
    """The same notifications signed with a key WeChat Pay does not have: the notify view answers 401."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from django_papay import crypto, wechatpay

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = []
    for headers, body in requests:
        timestamp, nonce = headers[wechatpay.TIMESTAMP_HEADER], headers[wechatpay.NONCE_HEADER]
        message = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
        forged.append(({**headers, wechatpay.SIGNATURE_HEADER: crypto.sign(stranger, message)}, body))
    return forged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per endpoint per round (default 1500)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds, alternating which endpoint goes first (default 5: a median one noisy round cannot move)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=WORKERS * THREADS,
        help=f"client connections (default {WORKERS * THREADS}: gunicorn's workers × threads)",
    )
    parser.add_argument("--on", default="", help="run under each PYTHON/DJANGO pair instead, e.g. 3.11/5.2,3.13/6.1")
    options = parser.parse_args()
    if options.on:
        arguments = ["--requests", str(options.requests), "--rounds", str(options.rounds)]
        arguments += ["--concurrency", str(options.concurrency)]
        return run_on(options.on, Path(__file__), arguments, marker=("machine:", "notify / bare", "forged / bare"))

    print("notify_throughput — the notify view through gunicorn on PostgreSQL vs a bare one-row view")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder:
        from django_papay.sandbox import ensure_demo_keys

        keys_dir = str(Path(folder) / "keys")
        keys = ensure_demo_keys(keys_dir)  # made up at run time; gone with the folder
        os.environ.update(
            DJANGO_SETTINGS_MODULE="bench_site.settings", PAPAY_BENCH_KEYS=keys_dir, PAPAY_BENCH_DATABASE=DATABASE
        )
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        recreate_database()
        server = None
        try:
            call_command("migrate", verbosity=0)
            total = WARMUP + options.rounds * options.requests
            built = time.monotonic()
            notify_requests = prepare(keys, total)
            print(
                f"{total} contracts created and notifications built in {time.monotonic() - built:.1f} s; "
                f"gunicorn gthread {WORKERS} workers × {THREADS} threads, {options.concurrency} client connections"
            )
            connections.close_all()

            port = free_port()
            server = start_gunicorn(port, keys_dir, Path(folder) / "gunicorn.log")
            warm, measured = notify_requests[:WARMUP], notify_requests[WARMUP:]
            drive(port, BARE_PATH, warm, options.concurrency, server.pid)
            drive(port, NOTIFY_PATH, warm, options.concurrency, server.pid)
            phases: dict[str, list[Phase]] = {NOTIFY_PATH: [], BARE_PATH: []}
            for round_no in range(options.rounds):
                batch = measured[round_no * options.requests : (round_no + 1) * options.requests]
                order = [BARE_PATH, NOTIFY_PATH] if round_no % 2 == 0 else [NOTIFY_PATH, BARE_PATH]
                for path in order:
                    phases[path].append(drive(port, path, batch, options.concurrency, server.pid))
            forged = forge(measured[: options.requests])
            flood: dict[str, list[Phase]] = {NOTIFY_PATH: [], BARE_PATH: []}
            for round_no in range(options.rounds):
                order = [BARE_PATH, NOTIFY_PATH] if round_no % 2 == 0 else [NOTIFY_PATH, BARE_PATH]
                for path in order:
                    flood[path].append(drive(port, path, forged, options.concurrency, server.pid))
            if time.monotonic() - built > WINDOW - 30:
                print("warning: the run neared WeChat Pay's 300 s window; late notifications may be refused")
        finally:
            if server is not None:
                stop_gunicorn(server)

        try:
            from django_papay.models import Contract, Notification

            notify_statuses = [status for phase in phases[NOTIFY_PATH] for status in phase.statuses]
            bare_statuses = [status for phase in phases[BARE_PATH] for status in phase.statuses]
            signed = Contract.objects.filter(status=Contract.Status.SIGNED).count()
            applied = Notification.objects.filter(result=Notification.Result.APPLIED).count()
            rejected = Notification.objects.filter(result=Notification.Result.REJECTED).count()
            forged_statuses = [status for phase in flood[NOTIFY_PATH] for status in phase.statuses]
            retried = sum(phase.retried for phase_list in phases.values() for phase in phase_list)
        finally:
            connections.close_all()
            drop_database()

    print(f"{options.rounds} rounds × {options.requests} requests per endpoint (after {WARMUP} warm-up each):")
    summarize("notify view (django-papay)", phases[NOTIFY_PATH])
    summarize("bare view (one INSERT)", phases[BARE_PATH])
    ratio = round_ratios("notify / bare", phases[NOTIFY_PATH], phases[BARE_PATH])
    print(f"forged deliveries, {options.rounds} rounds × {options.requests} (a stranger's signature):")
    summarize("notify view, forged (401)", flood[NOTIFY_PATH])
    summarize("bare view (one INSERT)", flood[BARE_PATH])
    forged_ratio = round_ratios("forged / bare", flood[NOTIFY_PATH], flood[BARE_PATH])
    not_401 = sum(status != 401 for status in forged_statuses)
    not_204 = sum(status != 204 for status in notify_statuses + bare_statuses)
    print(
        f"  answers other than 204: {not_204}; contracts signed: {signed} of {total}; notifications applied: "
        f"{applied}; requests resent after a closed keep-alive connection: {retried}"
    )
    print(f"  forged deliveries answered other than 401: {not_401}; stored rejected: {rejected}")
    if not_204 or signed != total or applied != total or not_401 or rejected != len(forged_statuses):
        print("FAILED: not every notification was accepted and applied, or a forgery was not refused and logged")
        return 1
    met = verdict("notify / bare throughput (median of rounds)", ratio, TARGET, at_most=False)
    met &= verdict("forged / bare throughput (median of rounds)", forged_ratio, FORGED_TARGET, at_most=False)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())

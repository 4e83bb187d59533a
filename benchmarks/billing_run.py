"""A billing run's throughput with 1, 2 and 4 task workers, and the task path's overhead per deduction.

    python benchmarks/billing_run.py [--backend db|rq|both] [--deductions 300] [--latency-ms 30] [--workers 1,2,4]

All on loopback: the sandbox in its own process (``python -m django_papay.sandbox``, answers delayed
``--latency-ms``), PostgreSQL ``<PAPAY_TEST_DATABASE_NAME or papay>_bench_billing`` at 127.0.0.1:5432 (created
and dropped here), and the workers of one backend: django-tasks-db's ``db_worker`` (``--interval 0.05``), or
``rqworker`` as docs/running-at-scale.md gives it, on a ``redis-server`` of its own. ``both`` (the default) runs
the benchmark once per backend, each in a fresh interpreter. For each worker count, the workers are started and
idle first; the clock runs from ``deduct_many`` (storing every row, enqueueing the run) until every deduction is
final. The comparison is ``services.deduct`` called in a loop in this process: the same charges, no queue.

Targets: the task path's overhead — (1 worker's time − the loop's time) / the loop's time — at most 10 %, and
N workers at least 0.8·N times one worker's throughput, for each N up to the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import start_redis, start_sandbox, stop
from report import machine

HERE = Path(__file__).resolve().parent
SUB_ORDERS = [{"sub_mchid": "1900000201", "description": "月费", "amount": 1500}]
CONTRACTS = 20
OVERHEAD_TARGET = 0.10
SCALING_TARGET = 0.8
WORKER_COMMANDS = {
    "db": ["db_worker", "--interval", "0.05", "--no-startup-delay", "--no-reload", "--verbosity", "0"],
    # As docs/running-at-scale.md gives it (tests/test_rq_worker.py keeps the two the same).
    "rq": ["rqworker", "--job-class", "django_tasks_rq.Job", "--with-scheduler", "--worker-class", "rq.SimpleWorker"],
}


def start_workers(backend: str, count: int) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "django", *WORKER_COMMANDS[backend], "--settings", "billing_settings"]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]


def signed_contracts(url: str) -> list:
    import requests

    from django_papay.models import Contract
    from django_papay.services import presign, query

    contracts = []
    for number in range(CONTRACTS):
        contract = presign(Contract.objects.create(plan_id=12535, contract_display_account=f"user {number}"))
        requests.post(f"{url}/sandbox/contracts/{contract.out_contract_code}/sign", json={}, timeout=10)
        contracts.append(query(contract))
    return contracts


def billing_run(backend: str, contracts: list, deductions: int, workers: int) -> float:
    from django_papay.dispatch import deduct_many
    from django_papay.models import Deduction
    from django_papay.services import Charge

    processes = start_workers(backend, workers)
    time.sleep(2)  # started and idle: their start-up is not timed
    try:
        started = time.perf_counter()
        run = deduct_many([Charge(contracts[n % len(contracts)], SUB_ORDERS) for n in range(deductions)]).run
        open_ = (Deduction.Status.CREATED, Deduction.Status.PROCESSING)
        while run.deductions.filter(status__in=open_).exists():
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            stop(process)
    succeeded = run.deductions.filter(status=Deduction.Status.SUCCEEDED).count()
    if succeeded != deductions:
        raise SystemExit(f"only {succeeded} of {deductions} deductions succeeded")
    return elapsed


def direct(contracts: list, deductions: int) -> float:
    from django_papay.services import deduct

    started = time.perf_counter()
    for number in range(deductions):
        deduct(contracts[number % len(contracts)], SUB_ORDERS)
    return time.perf_counter() - started


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(backend: str, loop: float, timed: dict[int, float], deductions: int) -> bool:
    """Print each target with whether it was met; True when all were."""
    met = True
    if 1 in timed:
        overhead = (timed[1] - loop) / loop
        met &= overhead <= OVERHEAD_TARGET
        print(
            f"  task path overhead ({backend}, 1 worker vs the loop): {(timed[1] - loop) / deductions * 1000:.1f} ms "
            f"per deduction, {overhead:+.1%} (target ≤ {OVERHEAD_TARGET:.0%}): {verdict(overhead <= OVERHEAD_TARGET)}"
        )
    cores = os.cpu_count() or 1
    for workers in sorted(timed):
        if workers == 1 or 1 not in timed:
            continue
        ratio = timed[1] / timed[workers]
        target = SCALING_TARGET * workers
        if workers > cores:
            print(f"  {workers} workers: {ratio:.2f}× one worker (more workers than the {cores} cores: no target)")
            continue
        met &= ratio >= target
        print(f"  {workers} workers: {ratio:.2f}× one worker (target ≥ {target:.1f}×): {verdict(ratio >= target)}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["db", "rq", "both"], default="both", help="task backend (default both)")
    parser.add_argument("--deductions", type=int, default=300, help="deductions per run (default 300)")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="sandbox answer delay (default 30)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to time (default 1,2,4)")
    options = parser.parse_args()
    if options.backend == "both":  # each backend in an interpreter of its own: settings are read once
        rest = ["--deductions", str(options.deductions), "--latency-ms", str(options.latency_ms)]
        rest += ["--workers", options.workers]
        codes = [subprocess.call([sys.executable, __file__, "--backend", backend, *rest]) for backend in ("db", "rq")]
        print("every target:", verdict(not any(codes)))
        return max(codes)
    return run(options)


def run(options: argparse.Namespace) -> int:
    database = f"{os.environ.get('PAPAY_TEST_DATABASE_NAME', 'papay')}_bench_billing"

    import psycopg

    names = {"db": "django-tasks-db db_worker", "rq": "django-tasks-rq rqworker (Redis)"}
    print(f"billing_run — deduct_many through {names[options.backend]} workers vs deduct() in a loop")
    print(f"machine: {machine()}")
    admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=5)
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder, admin:
        sandbox, url = start_sandbox(
            os.path.join(folder, "keys"),
            latency_ms=options.latency_ms,
            options=["--notify-rewrite", "https://bench.example/=http://127.0.0.1:9/"],
        )
        redis = None
        if options.backend == "rq":
            redis, redis_url = start_redis(folder)
            os.environ["PAPAY_BENCH_REDIS_URL"] = redis_url
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
        os.environ.update(
            PAPAY_BENCH_KEYS=os.path.join(folder, "keys"),
            PAPAY_BENCH_DATABASE=database,
            PAPAY_BENCH_SANDBOX=url,
            DJANGO_SETTINGS_MODULE="billing_settings",
        )
        try:
            import django

            django.setup()
            from django.core.management import call_command
            from django.db import connections
            from django.test import override_settings

            call_command("migrate", verbosity=0)
            contracts = signed_contracts(url)
            print(
                f"{options.deductions} deductions per run, {CONTRACTS} contracts; "
                f"answers delayed {options.latency_ms:g} ms"
            )
            with override_settings(PAPAY={**django.conf.settings.PAPAY, "TASKS": False}):
                direct(contracts, 10)  # warm-up
                loop = direct(contracts, options.deductions)
            print(f"  deduct() in a loop, 1 process       {loop:6.2f} s  {options.deductions / loop:6.1f}/s")
            timed = {}
            for workers in [int(part) for part in options.workers.split(",")]:
                timed[workers] = billing_run(options.backend, contracts, options.deductions, workers)
                seconds = timed[workers]
                print(
                    f"  billing run, {workers} worker process(es)   {seconds:6.2f} s  "
                    f"{options.deductions / seconds:6.1f}/s"
                )
            met = report(options.backend, loop, timed, options.deductions)
        finally:
            connections.close_all()
            stop(sandbox)
            if redis is not None:
                stop(redis)
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())

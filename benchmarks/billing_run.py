"""A billing run's throughput with 1, 2 and 4 task workers, and the task path's overhead per deduction.

    python benchmarks/billing_run.py [--deductions 300] [--latency-ms 30] [--workers 1,2,4]

All on loopback: the sandbox in its own process (``python -m django_papay.sandbox``, answers delayed
``--latency-ms``), PostgreSQL ``<PAPAY_TEST_DATABASE_NAME or papay>_bench_billing`` at 127.0.0.1:5432 (created
and dropped here), django-tasks-db's ``db_worker`` processes (``--interval 0.05``). For each worker count, the
workers are started and idle first; the clock runs from ``deduct_many`` (storing every row, enqueueing the run)
until every deduction is final. The comparison is ``services.deduct`` called in a loop in this process: the
same charges, no queue. Overhead per deduction = (1 worker's time − the loop's time) / deductions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import start_sandbox, stop
from report import machine

HERE = Path(__file__).resolve().parent
SUB_ORDERS = [{"sub_mchid": "1900000201", "description": "月费", "amount": 1500}]
CONTRACTS = 20


def start_workers(count: int) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "django", "db_worker", "--settings", "billing_settings", "--interval", "0.05"]
    command += ["--no-startup-delay", "--no-reload", "--verbosity", "0"]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(count)]


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


def billing_run(contracts: list, deductions: int, workers: int) -> float:
    from django_papay.dispatch import deduct_many
    from django_papay.models import Deduction
    from django_papay.services import Charge

    processes = start_workers(workers)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deductions", type=int, default=300, help="deductions per run (default 300)")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="sandbox answer delay (default 30)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to time (default 1,2,4)")
    options = parser.parse_args()
    database = f"{os.environ.get('PAPAY_TEST_DATABASE_NAME', 'papay')}_bench_billing"

    import psycopg

    print("billing_run — deduct_many through django-tasks-db workers vs deduct() in a loop")
    print(f"machine: {machine()}")
    admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=5)
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder, admin:
        sandbox, url = start_sandbox(
            os.path.join(folder, "keys"),
            latency_ms=options.latency_ms,
            options=["--notify-rewrite", "https://bench.example/=http://127.0.0.1:9/"],
        )
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
                timed[workers] = billing_run(contracts, options.deductions, workers)
                seconds = timed[workers]
                print(
                    f"  billing run, {workers} worker process(es)   {seconds:6.2f} s  "
                    f"{options.deductions / seconds:6.1f}/s"
                )
            if 1 in timed:
                overhead = (timed[1] - loop) / options.deductions * 1000
                print(f"  task path overhead per deduction (1 worker vs the loop): {overhead:.1f} ms")
        finally:
            connections.close_all()
            stop(sandbox)
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reconciling a generated trade bill of 1,000,000 rows against as many sub-orders in PostgreSQL: rows/s, peak memory.

    python benchmarks/reconcile_bill.py [--scale 1.0] [--rounds 3]

``--scale`` multiplies the 1,000,000 rows (0.01: 10,000, for a quick look). The database
``<PAPAY_TEST_DATABASE_NAME or papay>_bench_reconcile`` at 127.0.0.1:5432 is created, filled by COPY with one
signed contract, a succeeded deduction per 20 sub-orders and the sub-orders, all paid in one Beijing day, and
dropped at the end. The bill is written by the sandbox's own bill writer (gzip, backticks, the summary row),
every row one of those sub-orders, plus 10 rows only WeChat Pay has (so "missing here" is exercised too).

Each round runs in a fresh process: ``services.reconciliation.reconcile_bill`` on the downloaded file (keep the
file in storage, read it as a stream, match it in batches, write the discrepancies, walk our side of the day
for "missing there", count). The clock runs around that call; the peak memory is the process's maximum
resident set (``ru_maxrss``, Python and Django included). The figures are the median rows/s of the rounds and
the largest peak. Targets: at least 10,000 rows/s, under 300 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from report import machine

HERE = Path(__file__).resolve().parent
ROWS = 1_000_000
PER_DEDUCTION = 20
FOREIGN = 10
DAY = datetime(2026, 11, 30, tzinfo=None)
TARGET_ROWS_PER_SECOND = 10_000
TARGET_PEAK_MB = 300
MCHID = "1900000109"
SUB_MCHIDS = ("1900000201", "1900000202", "1900000203")


def out_trade_no(number: int) -> str:
    return f"B{number:031d}"


def transaction_id(number: int) -> str:
    return f"4200{number:024d}"


def amount(number: int) -> int:
    return 100 + number % 9_900


def paid_at(number: int, rows: int):
    from django_papay import wechatpay

    start = DAY.replace(tzinfo=wechatpay.BEIJING)
    return start + timedelta(seconds=number * 86_399 // max(rows, 1))


def fill_database(rows: int) -> None:
    """One contract, rows / PER_DEDUCTION deductions and ``rows`` sub-orders, by COPY."""
    from django.db import connection
    from django.utils import timezone

    from django_papay.models import Contract, Deduction

    contract = Contract.objects.create(plan_id=12535, contract_display_account="bench", status=Contract.Status.SIGNED)
    now = timezone.now()
    deductions = (rows + PER_DEDUCTION - 1) // PER_DEDUCTION
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY django_papay_deduction (contract_id, combine_out_trade_no, combine_appid, combine_mchid, risk_info, "
            "status, openid, last_error, corrected_from, created_at, updated_at, settled_at) FROM STDIN"
        ) as copy:
            for number in range(deductions):
                copy.write_row(
                    (
                        contract.pk,
                        f"D{number:031d}",
                        "wxd678efh567hg6787",
                        MCHID,
                        "",
                        Deduction.Status.SUCCEEDED,
                        "o1",
                        "",
                        "",
                        now,
                        now,
                        now,
                    )
                )
        cursor.execute("SELECT min(id) FROM django_papay_deduction")
        first = cursor.fetchone()[0]
        with raw.cursor().copy(
            "COPY django_papay_suborder (deduction_id, mchid, sub_mchid, sub_appid, out_trade_no, description, attach, "
            "amount, currency, sub_risk_info, transaction_id, trade_state, bank_type, success_time) FROM STDIN"
        ) as copy:
            for number in range(rows):
                copy.write_row(
                    (
                        first + number // PER_DEDUCTION,
                        MCHID,
                        SUB_MCHIDS[number % 3],
                        "",
                        out_trade_no(number),
                        "月费",
                        "",
                        amount(number),
                        "CNY",
                        "",
                        transaction_id(number),
                        "SUCCESS",
                        "OTHERS",
                        paid_at(number, rows),
                    )
                )
        cursor.execute("ANALYZE django_papay_suborder")
        cursor.execute("ANALYZE django_papay_deduction")


def bill_rows(rows: int):
    from django_papay.sandbox import bill_file

    charge = {"combine_appid": "wxd678efh567hg6787", "combine_payer_info": {"openid": "o1"}}
    for number in range(rows):
        sub = {
            "mchid": MCHID,
            "sub_mchid": SUB_MCHIDS[number % 3],
            "out_trade_no": out_trade_no(number),
            "transaction_id": transaction_id(number),
            "amount": {"total_amount": amount(number)},
        }
        yield bill_file.payment_row(charge, sub, paid_at(number, rows))
    for number in range(rows, rows + FOREIGN):
        sub = {
            "mchid": MCHID,
            "sub_mchid": SUB_MCHIDS[0],
            "out_trade_no": f"F{number:031d}",
            "transaction_id": transaction_id(number),
            "amount": {"total_amount": 1},
        }
        yield bill_file.payment_row(charge, sub, paid_at(rows - 1, rows))


def child(bill_path: str, hash_value: str) -> None:
    """One timed round: a fresh report, reconcile_bill on the file; prints its figures as JSON."""
    import django

    django.setup()
    from django_papay.models import Reconciliation
    from django_papay.services.bills import DownloadedBill
    from django_papay.services.reconciliation import reconcile_bill, start_report

    report = start_report(DAY.date(), "")
    with open(bill_path, "rb") as file:
        bill = DownloadedBill(file, hash_value, os.path.getsize(bill_path))
        started = time.perf_counter()
        report = reconcile_bill(report, bill)
        elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": report.status,
                "error": report.error,
                "rows": report.bill_rows,
                "seconds": elapsed,
                "peak_mb": peak_kb / 1024,
                "discrepancies": report.discrepancy_count,
                "ours": report.payments_ours,
                "balanced_otherwise": report.discrepancy_count == FOREIGN
                and report.status == Reconciliation.Status.DISCREPANCIES,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help=f"× {ROWS:,} rows (default 1.0)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, each a fresh process (default 3)")
    parser.add_argument("--child", nargs=2, metavar=("BILL", "SHA1"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return 0
    rows = max(1, round(ROWS * options.scale))
    database = f"{os.environ.get('PAPAY_TEST_DATABASE_NAME', 'papay')}_bench_reconcile"

    import psycopg

    print("reconcile_bill — a day's trade bill against its sub-orders in PostgreSQL")
    print(f"machine: {machine()}")
    admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=5)
    with tempfile.TemporaryDirectory(prefix="papay-bench-") as folder, admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
        env = {
            **os.environ,
            "PAPAY_BENCH_DATABASE": database,
            "PAPAY_BENCH_MEDIA": os.path.join(folder, "media"),
            "DJANGO_SETTINGS_MODULE": "reconcile_settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH", "")])),
        }
        os.environ.update({name: env[name] for name in ("PAPAY_BENCH_DATABASE", "PAPAY_BENCH_MEDIA")})
        os.environ["DJANGO_SETTINGS_MODULE"] = "reconcile_settings"
        sys.path.insert(0, str(HERE))
        try:
            import django

            django.setup()
            from django.core.management import call_command
            from django.db import connections

            from django_papay.sandbox import bill_file

            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            fill_database(rows)
            bill_path = os.path.join(folder, "tradebill.csv.gz")
            with open(bill_path, "wb") as out:
                hash_value = bill_file.write_bill(bill_rows(rows), io.BufferedWriter(out))
            connections.close_all()
            size = os.path.getsize(bill_path) / 1e6
            print(
                f"{rows:,} sub-orders stored and a bill of {rows + FOREIGN:,} rows written ({size:.1f} MB gzip) "
                f"in {time.perf_counter() - started:.0f} s"
            )
            results = []
            for round_ in range(1, options.rounds + 1):
                command = [sys.executable, str(HERE / "reconcile_bill.py"), "--child", bill_path, hash_value]
                done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if not result["balanced_otherwise"] or result["rows"] != rows + FOREIGN:
                    raise SystemExit(f"round {round_} did not reconcile as expected: {result}")
                results.append(result)
                print(
                    f"  round {round_}: {result['rows']:,} rows in {result['seconds']:.1f} s = "
                    f"{result['rows'] / result['seconds']:,.0f} rows/s, peak {result['peak_mb']:.0f} MB, "
                    f"{result['discrepancies']} discrepancies (the {FOREIGN} planted)"
                )
        finally:
            connections.close_all()
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    speed = statistics.median(r["rows"] / r["seconds"] for r in results)
    peak = max(r["peak_mb"] for r in results)
    speed_met, peak_met = speed >= TARGET_ROWS_PER_SECOND, peak < TARGET_PEAK_MB
    print(
        f"rows/s (median of {len(results)}): {speed:,.0f} (target ≥ {TARGET_ROWS_PER_SECOND:,}): "
        f"{'met' if speed_met else 'MISSED'}"
    )
    print(f"peak memory (largest): {peak:.0f} MB (target < {TARGET_PEAK_MB} MB): {'met' if peak_met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

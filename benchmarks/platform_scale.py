"""A platform's data in the admin and in the selection queries: every changelist and change page under 300 ms.

    python benchmarks/platform_scale.py [--scale 1.0] [--rounds 3]

Seeds PostgreSQL ``<PAPAY_TEST_DATABASE_NAME or papay>_bench_scale`` (created and dropped here, 127.0.0.1:5432)
with ``--scale`` × 1,000,000 contracts, 5,000,000 notification rows, 200,000 deductions with a sub-order each,
100,000 refunds and 1,000 billing runs, in SQL (``generate_series``), then ANALYZEs. Then, with Django's test
client as a superuser: each admin changelist (contracts, deductions, notifications, refunds, billing runs; plain,
filtered, a far page, searched by one exact number) and change page, the median of ``--rounds``; the selection
queries of ``papay_sync``, ``papay_settle`` (deductions and refunds), a billing run's fan-out and reconciliation
(a bill's refund rows by WeChat Pay's refund id; a day's sub-orders and refunds), with their EXPLAIN plans (no
sequential scan of a big table) and times; and ``deduct_many`` storing charges (``--charges``, default
100,000 × scale) against ≥ 2,000 charges/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from report import machine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DATABASE = f"{os.environ.get('PAPAY_TEST_DATABASE_NAME', 'papay')}_bench_scale"
PAGE_TARGET_MS = 300.0
CHARGES_TARGET = 2000.0
DAYS = 365  # the days the seeded charges and refunds span: a year of them
BIG_TABLES = (
    "django_papay_contract",
    "django_papay_notification",
    "django_papay_deduction",
    "django_papay_suborder",
    "django_papay_refund",
)
urlpatterns: list = []  # ROOT_URLCONF is this module: the admin, set in configure()


def postgres(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=dbname, autocommit=True)


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="Asia/Shanghai",
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["testserver"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_papay",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        ROOT_URLCONF=__name__,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "USER": "postgres",
                "NAME": DATABASE,
            }
        },
        PAPAY={"MCHID": "1900000100", "APPID": "wxd678efh567hg6787", "NOTIFY_URL": "https://bench.example/n/"},
    )
    django.setup()
    from django.contrib import admin
    from django.urls import path

    urlpatterns.append(path("admin/", admin.site.urls))


def seed(scale: float) -> dict[str, int]:
    """The rows, in SQL: each table's columns from the model, with a value per row where it matters."""
    from django.db import connection

    from django_papay.models import BillingRun, Contract, Deduction, Notification, Refund, SubOrder

    counts = {
        "contracts": int(1_000_000 * scale),
        "notifications": int(5_000_000 * scale),
        "deductions": int(200_000 * scale),
        "refunds": int(100_000 * scale),
        "runs": max(1, int(1_000 * scale)),
    }
    n = counts["contracts"]
    # Charges and refunds spread over the last DAYS days, newest first: a reconciled day holds 1/DAYS of them.
    charged = f"now() - i * interval '{DAYS * 86_400 / counts['deductions']} seconds'"
    refunded = f"now() - i * interval '{DAYS * 86_400 / counts['refunds']} seconds'"
    statuses = pick(["signed"] * 6 + ["terminated", "presigned", "expired", "created"])
    fill(BillingRun, counts["runs"], {"label": "'run ' || i"})
    fill(
        Contract,
        n,
        {
            "out_contract_code": "md5('c' || i)",
            "plan_id": "12535",
            "contract_display_account": "'user ' || i",
            "status": statuses,
            "contract_id": "CASE WHEN i % 10 < 7 THEN 'CID' || i ELSE '' END",
            "openid": "'openid' || i",
            "presigned_at": "now() - i * interval '1 second' - interval '20 minutes'",
            "created_at": "now() - i * interval '1 second'",
        },
    )
    fill(
        Notification,
        counts["notifications"],
        {
            "notification_id": "md5('n' || i)",
            "event_type": "'ECOMMERCE_ENTRUST.SIGN'",
            "result": pick(["applied", "duplicate", "rejected", "applied"]),
            "verified": "i % 4 <> 2",
            "processed": "i % 4 <> 2",
            "received_at": "now() - i * interval '100 milliseconds'",
            "contract_id": f"CASE WHEN i % 4 = 2 THEN NULL ELSE 1 + i % {n} END",
            "headers": "'{}'::jsonb",
        },
    )
    fill(
        Deduction,
        counts["deductions"],
        {
            "contract_id": f"1 + (i * 7) % {n}",
            "combine_out_trade_no": "md5('d' || i)",
            "combine_appid": "'wxd678efh567hg6787'",
            "status": pick(["succeeded"] * 7 + ["failed", "processing", "created"]),
            "sent_at": f"CASE WHEN i % 10 = 9 THEN NULL ELSE {charged} END",
            "settled_at": f"CASE WHEN i % 10 < 8 THEN {charged} END",
            "billing_run_id": f"1 + i % {counts['runs']}",
            "created_at": charged,
        },
    )
    fill(
        SubOrder,
        counts["deductions"],
        {
            "deduction_id": "i",
            "mchid": "'1900000100'",
            "sub_mchid": "'1900000201'",
            "out_trade_no": "md5('s' || i)",
            "description": "'月费'",
            "amount": "1500",
            "transaction_id": "CASE WHEN i % 10 < 7 THEN 'T' || i ELSE '' END",
            "success_time": f"CASE WHEN i % 10 < 6 THEN {charged} END",  # some paid with no time given
        },
    )
    fill(
        Refund,
        counts["refunds"],
        {
            "sub_order_id": "2 * i",  # every other sub-order's, one each
            "out_refund_no": "'R' || md5('r' || i)",
            "refund_id": "CASE WHEN i % 10 < 9 THEN 'RID' || i ELSE '' END",
            "amount": "500",
            "status": pick(["succeeded"] * 7 + ["processing", "abnormal", "failed"]),
            "advance": "i % 200 = 0",
            "sent_at": f"CASE WHEN i % 10 = 9 THEN NULL ELSE {refunded} END",
            "created_at": refunded,
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return counts


def pick(values: list[str]) -> str:
    """SQL for row ``i``'s value: ``values`` in turn (their shares as listed)."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"(ARRAY[{listed}])[1 + i % {len(values)}]"


def fill(model, rows: int, values: dict[str, str]) -> None:
    """INSERT … SELECT over generate_series(1, rows) AS i: ``values`` by column, the rest a neutral default."""
    from django.db import connection, models

    columns, expressions = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        column = field.column
        if column in values:
            expression = values[column]
        elif field.null:
            expression = "NULL"
        elif isinstance(field, models.BooleanField):
            expression = "false"
        elif isinstance(field, models.JSONField):
            expression = "'{}'::jsonb"
        elif isinstance(field, models.DateTimeField):
            expression = "now()"
        elif isinstance(field, (models.IntegerField, models.BigIntegerField, models.PositiveBigIntegerField)):
            expression = str(field.default if isinstance(field.default, int) else 0)
        else:
            expression = f"'{field.default}'" if isinstance(field.default, str) else "''"
        columns.append(f'"{column}"')
        expressions.append(expression)
    # The benchmark's own table and column names and SQL expressions: no input reaches this text.
    table, names, selected = model._meta.db_table, ", ".join(columns), ", ".join(expressions)
    sql = f'INSERT INTO "{table}" ({names}) SELECT {selected} FROM generate_series(1, {rows}) AS i'  # noqa: S608
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql)
    print(f"  seeded {rows:>9,} {model._meta.verbose_name_plural} in {time.perf_counter() - started:.1f} s")


def timed(call: Callable[[], object], rounds: int) -> float:
    """The median of ``rounds`` calls, in milliseconds (after one warm-up call)."""
    call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def pages(rounds: int) -> list[tuple[str, float]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from django_papay.models import BillingRun, Contract, Deduction, Notification, Refund

    user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    contract = Contract.objects.order_by("pk")[500]
    deduction = Deduction.objects.order_by("pk")[500]
    notification = Notification.objects.order_by("pk")[500]
    refund = Refund.objects.order_by("pk")[500]
    run = BillingRun.objects.order_by("pk").first()
    if run is None:
        raise SystemExit("no billing run was seeded")
    base = "/admin/django_papay"
    urls = [
        ("contracts", f"{base}/contract/"),
        ("contracts, status signed", f"{base}/contract/?status__exact=signed"),
        ("contracts, page 500", f"{base}/contract/?p=500"),
        ("contracts, search out_contract_code", f"{base}/contract/?q={contract.out_contract_code}"),
        ("contracts, search contract_id", f"{base}/contract/?q={contract.contract_id or 'CID7'}"),
        ("contract change page", f"{base}/contract/{contract.pk}/change/"),
        ("deductions", f"{base}/deduction/"),
        ("deductions, status processing", f"{base}/deduction/?status__exact=processing"),
        ("deductions, search combine_out_trade_no", f"{base}/deduction/?q={deduction.combine_out_trade_no}"),
        ("deduction change page", f"{base}/deduction/{deduction.pk}/change/"),
        ("notifications", f"{base}/notification/"),
        ("notifications, result rejected", f"{base}/notification/?result__exact=rejected"),
        ("notifications, search notification_id", f"{base}/notification/?q={notification.notification_id}"),
        ("notification change page", f"{base}/notification/{notification.pk}/change/"),
        ("refunds", f"{base}/refund/"),
        ("refunds, status abnormal", f"{base}/refund/?status__exact=abnormal"),
        ("refunds, advanced by the platform", f"{base}/refund/?advance__exact=1"),
        ("refunds, search out_refund_no", f"{base}/refund/?q={refund.out_refund_no}"),
        ("refunds, search refund_id", f"{base}/refund/?q={refund.refund_id or 'RID7'}"),
        ("refund page", f"{base}/refund/{refund.pk}/change/"),
        ("billing runs", f"{base}/billingrun/"),
        ("billing run change page", f"{base}/billingrun/{run.pk}/change/"),
    ]
    measured = []
    for label, url in urls:

        def get(url: str = url) -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")

        measured.append((label, timed(get, rounds)))
    return measured


def selections(rounds: int) -> list[tuple[str, float, str]]:
    """papay_sync's, papay_settle's, the fan-out's and reconciliation's queries: time and plan (the first page of
    1,000; reconciliation's of a day: all of yesterday's rows, read as a bill of that day reads them, through a
    server-side cursor, whose plan PostgreSQL makes for the first rows: that is the plan shown)."""
    from datetime import timedelta

    from django.utils import timezone

    from django_papay.models import BillingRun, Deduction, Refund
    from django_papay.services.bill_match import paid_on, read, refunded_on
    from django_papay.services.due import contracts_to_sync, deductions_to_settle, refunds_to_settle
    from django_papay.wechatpay import BEIJING

    run = BillingRun.objects.order_by("pk").first()
    if run is None:
        raise SystemExit("no billing run was seeded")
    yesterday = timezone.localdate(timezone.now() - timedelta(days=1), timezone=BEIJING)
    queries = {
        "papay_sync: contracts_to_sync()": contracts_to_sync().values_list("pk", flat=True)[:1000],
        "papay_settle: deductions_to_settle()": deductions_to_settle().values_list("pk", flat=True)[:1000],
        "papay_settle: refunds_to_settle()": refunds_to_settle().values_list("pk", flat=True)[:1000],
        # bill_match's second lookup: a bill chunk's refund rows whose out_refund_no is not ours (a few: 10 here).
        "reconciliation: refunds by refund_id": Refund.objects.filter(
            refund_id__in=[f"RID{number}" for number in range(1, 100, 10)]
        ).values_list("pk", flat=True),
        "fan-out: a run's CREATED rows": run.deductions.filter(status=Deduction.Status.CREATED)
        .order_by("pk")
        .values_list("pk", flat=True)[:1000],
    }
    days = {
        **dict(zip(("sub-orders, paid", "sub-orders, by settling"), paid_on(yesterday), strict=True)),
        **dict(zip(("refunds, sent", "refunds, unsent"), refunded_on(yesterday), strict=True)),
    }
    found = []
    for label, queryset in queries.items():
        plan = explained("EXPLAIN ", queryset)
        found.append((label, timed(lambda queryset=queryset: list(queryset.all()), rounds), plan))
    for label, rows in days.items():
        day = rows.order_by().values_list("pk", "amount")  # what read() sends: no ORDER BY
        plan = explained("EXPLAIN DECLARE papay_probe NO SCROLL CURSOR WITH HOLD FOR ", day)
        found.append((f"reconciliation: a day's {label}", timed(lambda day=day: list(read(day)), rounds), plan))
    return found


def explained(explain: str, queryset) -> str:
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def store_charges(count: int) -> float:
    """``deduct_many``'s storing (store_run: every row committed before any is sent), charges per second."""
    from django_papay.models import Contract
    from django_papay.services import Charge
    from django_papay.services.billing import store_run

    contracts = list(Contract.objects.filter(status=Contract.Status.SIGNED).order_by("pk")[:1000])
    sub_orders = [{"sub_mchid": "1900000201", "description": "月费", "amount": 1500}]
    charges = (Charge(contracts[number % len(contracts)], sub_orders) for number in range(count))
    started = time.perf_counter()
    planned = store_run(charges, label="scale")
    elapsed = time.perf_counter() - started
    if planned.run.deductions.count() != count:
        raise SystemExit(f"not every charge was stored: {planned.refused[:3]}")
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="× 1,000,000 contracts (default 1.0)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per page (default 3)")
    parser.add_argument("--charges", type=int, default=None, help="charges deduct_many stores (100,000 × scale)")
    options = parser.parse_args()
    with postgres() as server:
        server.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        configure()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        print("platform_scale — the admin and the selection queries on a platform's data (PostgreSQL)")
        print(f"machine: {machine()}")
        counts = seed(options.scale)
        print("  " + ", ".join(f"{value:,} {name}" for name, value in counts.items()))
        met = True
        print(f"admin pages (median of {options.rounds}; target each ≤ {PAGE_TARGET_MS:.0f} ms):")
        for label, ms in pages(options.rounds):
            ok = ms <= PAGE_TARGET_MS
            met &= ok
            print(f"  {label:<44} {ms:8.1f} ms  {'met' if ok else 'MISSED'}")
        print("selection queries (first 1,000 rows, a day's all; target: no sequential scan of a big table):")
        for label, ms, plan in selections(options.rounds):
            seq = [table for table in BIG_TABLES if f"Seq Scan on {table}" in plan]
            met &= not seq
            print(f"  {label:<44} {ms:8.1f} ms  {'MISSED: ' + ', '.join(seq) if seq else 'met'}")
            print("    " + plan.replace("\n", "\n    "))
        charges = options.charges or int(100_000 * options.scale)
        rate = store_charges(charges)
        ok = rate >= CHARGES_TARGET
        met &= ok
        print(
            f"deduct_many storing {charges:,} charges: {rate:,.0f}/s (target ≥ {CHARGES_TARGET:,.0f}/s): "
            f"{'met' if ok else 'MISSED'}"
        )
        print(f"every target: {'met' if met else 'MISSED'}")
        connections.close_all()
        return 0 if met else 1
    finally:
        with postgres() as server:
            server.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

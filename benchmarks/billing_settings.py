"""Django settings for billing_run.py and the worker processes it starts: everything from the environment
that benchmark sets (database, sandbox URL, demo keys folder, and for RQ the Redis URL)."""

import os

from django_papay.sandbox import ensure_demo_keys

_keys = ensure_demo_keys(os.environ["PAPAY_BENCH_KEYS"])

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_papay", "django_tasks_db"]
try:
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.append("django_tasks")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "NAME": os.environ["PAPAY_BENCH_DATABASE"],
        "CONN_MAX_AGE": 600,  # a worker keeps its connection: django-tasks-db closes obsolete ones between tasks
        "CONN_HEALTH_CHECKS": True,
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
if os.environ.get("PAPAY_BENCH_REDIS_URL"):  # RQ on that Redis; django_rq brings the rqworker command
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {"default": {"URL": os.environ["PAPAY_BENCH_REDIS_URL"]}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
PAPAY = {
    "MCHID": _keys.mchid,
    "MERCHANT_SERIAL_NO": _keys.merchant_serial_no,
    "MERCHANT_PRIVATE_KEY_PATH": _keys.merchant_private_key_path,
    "APIV3_KEY": _keys.apiv3_key,
    "APPID": "wxd678efh567hg6787",
    "NOTIFY_URL": "https://bench.example/papay/notify/",
    "WECHATPAY_PUBLIC_KEY_PATH": _keys.wechatpay_public_key_path,
    "WECHATPAY_PUBLIC_KEY_ID": _keys.wechatpay_public_key_id,
    "BASE_URL": os.environ["PAPAY_BENCH_SANDBOX"],
    "TASKS": True,
}

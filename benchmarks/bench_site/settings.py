"""Settings for the throughput benchmark: PostgreSQL, the notify view, a bare view, nothing else.

Read from the environment notify_throughput.py sets: ``PAPAY_BENCH_KEYS`` (a folder of made-up keys,
see ``django_papay.sandbox.ensure_demo_keys``) and ``PAPAY_BENCH_DATABASE``. Both views run behind the
same middleware, on the same persistent database connections, in the same gunicorn workers.
"""

import os

from django_papay.sandbox import ensure_demo_keys

SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False  # DEBUG would keep every query in memory
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_papay", "bench_site"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "bench_site.urls"
WSGI_APPLICATION = "bench_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "NAME": os.environ.get("PAPAY_BENCH_DATABASE", "papay_bench"),
        "CONN_MAX_AGE": None,  # one connection per worker thread, kept, as production sites run
        # No pooler in transaction mode stands between: the notify store may prepare its statements
        # (django_papay/services/notify_prepared.py). Django's default (None) keeps poolers working.
        "OPTIONS": {"prepare_threshold": int(os.environ.get("PAPAY_BENCH_PREPARE_THRESHOLD", "5"))}
        if os.environ.get("PAPAY_BENCH_PREPARE_THRESHOLD", "5") != "none"
        else {},
    }
}

KEYS = ensure_demo_keys(os.environ["PAPAY_BENCH_KEYS"])
PAPAY = {
    "MCHID": KEYS.mchid,
    "MERCHANT_SERIAL_NO": KEYS.merchant_serial_no,
    "MERCHANT_PRIVATE_KEY_PATH": KEYS.merchant_private_key_path,
    "APIV3_KEY": KEYS.apiv3_key,
    "APPID": "wxd678efh567hg6787",
    "NOTIFY_URL": "https://bench.example/papay/notify/",
    "WECHATPAY_PUBLIC_KEY_PATH": KEYS.wechatpay_public_key_path,
    "WECHATPAY_PUBLIC_KEY_ID": KEYS.wechatpay_public_key_id,
    "BASE_URL": "http://127.0.0.1:9",  # the notify view never calls out
}

"""Django settings for reconcile_bill.py and its timed child processes: PostgreSQL, django_papay, a media folder
for the bill files, all from the environment that benchmark sets."""

import os

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False  # DEBUG would keep every query in memory
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_papay"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "NAME": os.environ["PAPAY_BENCH_DATABASE"],
    }
}
MEDIA_ROOT = os.environ["PAPAY_BENCH_MEDIA"]
PAPAY: dict = {}  # nothing here calls WeChat Pay: every row of the bill is a sub-order already succeeded

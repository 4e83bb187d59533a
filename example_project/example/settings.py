"""A runnable site for django-papay on SQLite, wired to the bundled WeChat Pay sandbox.

Demo credentials (merchant key, WeChat Pay key pair, APIv3 key) are generated on first run into
.demo-keys/, which git ignores. Nothing here talks to the real WeChat Pay. ``PAPAY_DEMO_DIR`` moves the
database, the keys and the kept bill files elsewhere (the demo's test runs it in a folder of its own).
"""

import os
from pathlib import Path

from django_papay.sandbox import ensure_demo_keys

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PAPAY_DEMO_DIR") or BASE_DIR)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-only-not-a-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_papay",
    "demo",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example.urls"
TEMPLATES = [
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
]
WSGI_APPLICATION = "example.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
MEDIA_ROOT = DATA_DIR / "media"  # the reconciliations keep each day's bill file here

# --- django-papay -------------------------------------------------------------------------
DEMO_KEYS = ensure_demo_keys(DATA_DIR / ".demo-keys")
SANDBOX_PORT = int(os.environ.get("PAPAY_SANDBOX_PORT", "8765"))

PAPAY = {
    "MCHID": DEMO_KEYS.mchid,
    "MERCHANT_SERIAL_NO": DEMO_KEYS.merchant_serial_no,
    "MERCHANT_PRIVATE_KEY_PATH": DEMO_KEYS.merchant_private_key_path,
    "APIV3_KEY": DEMO_KEYS.apiv3_key,
    "APPID": "wxd678efh567hg6787",
    # WeChat Pay only calls https URLs; in production this is your site's notify view.
    "NOTIFY_URL": "https://papay.example/papay/notify/",
    "WECHATPAY_PUBLIC_KEY_PATH": DEMO_KEYS.wechatpay_public_key_path,
    "WECHATPAY_PUBLIC_KEY_ID": DEMO_KEYS.wechatpay_public_key_id,
    "BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
    "TIMEOUT": (3, 10),
    "RETURN_APP": True,
    # The plans users may sign from the App (the "App" page at /app/ signs the first).
    "APP_PLAN_IDS": [12535],
    # The platform's commission on sub-orders charged with profit_sharing (the demo's membership fee).
    "COMMISSION": "demo.commission.platform_commission",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_papay": {"handlers": ["console"], "level": os.environ.get("PAPAY_LOG_LEVEL", "WARNING")}},
}

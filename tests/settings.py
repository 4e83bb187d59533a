"""Settings for the test suite. ``PAPAY_TEST_DATABASE=postgres`` runs it on PostgreSQL at 127.0.0.1:5432."""

import importlib.util
import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_papay",
]
# Django Tasks: built into Django ≥ 6, the django-tasks backport before; the database worker's tables.
try:
    import django.tasks  # noqa: F401

    TASKS_MODULE = "django.tasks"
except ImportError:
    TASKS_MODULE = "django_tasks"
    INSTALLED_APPS.append("django_tasks")
if importlib.util.find_spec("django_tasks_db"):  # the main run's (Django >= 5.2); the worker test needs it
    INSTALLED_APPS.append("django_tasks_db")
TASKS = {"default": {"BACKEND": f"{TASKS_MODULE}.backends.immediate.ImmediateBackend"}}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
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
STATIC_URL = "/static/"
# The reconciliations keep each bill file in the default storage: a folder of the run's own.
MEDIA_ROOT = tempfile.mkdtemp(prefix="papay-test-media-")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users

if os.environ.get("PAPAY_TEST_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "NAME": os.environ.get("PAPAY_TEST_DATABASE_NAME", "django_papay"),  # test_<NAME> is made
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

# Each test gets a complete PAPAY dict pointing at the loopback sandbox (see tests/conftest.py).
PAPAY: dict = {}
# ...so the suite's own settings have none, which the system checks would report (manage.py commands).
SILENCED_SYSTEM_CHECKS = ["django_papay.E001"]

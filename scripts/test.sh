#!/usr/bin/env bash
# The whole test suite for a fresh clone: lint, type check, migrations check, package check, the docs build,
# pytest on SQLite and on PostgreSQL. PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth); without it that run
# is skipped, loudly — except under CI=true, where it is required.
# PAPAY_MATRIX=1 (CI sets it) then runs the version matrix: the SQLite suite on Django 4.2, 5.2 and 6.x, on the
# oldest and newest Python each supports (noxfile.py; Pythons 3.10–3.13 on PATH or under ~/.pyenv/versions).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
papay_venv test,dev

echo "==> ruff"
ruff check .
ruff format --check .

echo "==> mypy (django_papay/, with django-stubs)"
mypy

echo "==> makemigrations --check"
DJANGO_SETTINGS_MODULE=tests.settings python -m django makemigrations --check --dry-run

echo "==> package contents"
python scripts/check_package.py

echo "==> docs (mkdocs build --strict: a broken link, anchor or image fails)"
mkdocs build --strict --quiet

echo "==> tests on SQLite"
python -m pytest "$@"

if python - <<'PY'
import psycopg
psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3).close()
PY
then
    echo "==> tests on PostgreSQL (127.0.0.1:5432)"
    PAPAY_TEST_DATABASE=postgres python -m pytest "$@"
elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL at 127.0.0.1:5432 is not reachable, and CI requires the PostgreSQL run." >&2
    exit 1
else
    echo "==> SKIPPED the PostgreSQL run: no server reachable at 127.0.0.1:5432 (user postgres)."
fi

if [ "${PAPAY_MATRIX:-}" = "1" ]; then
    echo "==> version matrix (nox): the SQLite suite on each Django and Python"
    nox -- "$@"  # the same pytest arguments, in every session
fi

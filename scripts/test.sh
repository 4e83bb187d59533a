#!/usr/bin/env bash
# The whole test suite for a fresh clone: lint, migrations check, pytest on SQLite and on PostgreSQL.
# PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth); without it that run is skipped,
# loudly — except under CI=true, where it is required.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
papay_venv test

echo "==> ruff"
ruff check .
ruff format --check .

echo "==> makemigrations --check"
DJANGO_SETTINGS_MODULE=tests.settings python -m django makemigrations --check --dry-run

echo "==> package contents"
python scripts/check_package.py

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

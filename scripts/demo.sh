#!/usr/bin/env bash
# The demo on embedded defaults — SQLite and the bundled WeChat Pay sandbox, no WeChat credentials:
# creates a contract and pre-signs it, printing each step. With --serve it then keeps the sandbox
# running and serves the admin at http://127.0.0.1:8000/admin/ (user "demo", password "demo") and the
# "App" page at http://127.0.0.1:8000/app/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
papay_venv
cd example_project
python manage.py migrate --noinput --verbosity 0
python manage.py papay_demo "$@"

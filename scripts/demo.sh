#!/usr/bin/env bash
# The demo on embedded defaults — SQLite and the bundled WeChat Pay sandbox, no WeChat credentials:
# creates a contract and pre-signs it, printing each step. With --serve it then keeps the sandbox
# running and serves the admin at http://127.0.0.1:8000/admin/ (user "demo", password "demo") and the
# "App" page at http://127.0.0.1:8000/app/.
set -euo pipefail
cd "$(dirname "$0")/.."

for argument in "$@"; do
    case "$argument" in
    -h | --help)
        cat <<'USAGE'
Usage: bash scripts/demo.sh [--serve] [--port PORT] [--plan-id ID] [--account TEXT]

Runs django-papay's whole flow against the bundled WeChat Pay sandbox (SQLite, made-up keys in
example_project/.demo-keys/, nothing leaves this machine): create a contract, pre-sign it, the sandbox
signs as the user, the notification marks it signed, charge it, refund part of it, terminate it, reconcile the day.

  --serve          afterwards keep the sandbox running and serve the admin at http://127.0.0.1:PORT/admin/
                   (user demo, password demo); Ctrl-C stops both
  --port PORT      the admin's port with --serve (default: $PAPAY_ADMIN_PORT, else 8000)
  --plan-id ID     the deduction template id to use (default 12535)
  --account TEXT   the contract_display_account WeChat shows the user (default 138****8888)
  -h, --help       this text

Environment: PAPAY_ADMIN_PORT (the admin's port), PAPAY_SANDBOX_PORT (the sandbox's, default 8765),
PAPAY_LOG_LEVEL (django_papay's log level, default WARNING).

With --serve, make WeChat Pay fail the next call to see its error in the admin:
  curl -X POST http://127.0.0.1:8765/sandbox/faults -d '{"fault": "system_error"}'
USAGE
        exit 0
        ;;
    esac
done
. scripts/_venv.sh
papay_venv
cd example_project
python manage.py migrate --noinput --verbosity 0
python manage.py papay_demo "$@"

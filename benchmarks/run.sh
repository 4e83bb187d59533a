#!/usr/bin/env bash
# One benchmark from a fresh clone: bash benchmarks/run.sh notify_crypto|notify_throughput|bulk_presign|billing_run|platform_scale|reconcile_bill [options]
# Makes ./.venv (shared with scripts/test.sh and scripts/demo.sh) and installs django-papay[bench] into it
# once, then runs the benchmark, which prints its figures and whether its target was met.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    notify_crypto|notify_throughput|bulk_presign|billing_run|platform_scale|reconcile_bill) name="$1"; shift ;;
    *) echo "usage: bash benchmarks/run.sh notify_crypto|notify_throughput|bulk_presign|billing_run|platform_scale|reconcile_bill [options]" >&2; exit 2 ;;
esac
. scripts/_venv.sh
papay_venv bench
exec python "benchmarks/$name.py" "$@"

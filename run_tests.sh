#!/usr/bin/env bash
# Run the test suite (lint + pytest), creating .venv on first use.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv "fuzz,test,report"
# the C-world tests build Debian's linux-source-6.12 (fetched once into the cache)
. ./scripts/fetch_kernel.sh
ensure_kernel_tree || true
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# Run the test suite (lint + pytest), creating .venv on first use.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv "fuzz,test,report"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"

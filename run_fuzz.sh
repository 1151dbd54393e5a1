#!/usr/bin/env bash
# The main job.  Until the campaign driver exists (issue 4) this runs the model's self-check:
# the kernel's own selftest sequence on every configuration with a non-coherent walker,
# checking after every step that the SMMU reads what the CPU wrote.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv "fuzz,test"
exec "$VENV/bin/python" -m fuzz "$@"

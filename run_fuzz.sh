#!/usr/bin/env bash
# The main job: an Atheris campaign (creates .venv on first use).
#
#   ./run_fuzz.sh [--variant V] [--time S] [--jobs N] [--config FILTER] [--corpus D]
#                 [--crashes D] [--strict] [--stop-first] [--no-seeds] [--coverage]
#                 [--instrument model|walker] [--reference model|c] [--kernel-tree DIR]
#                 [-- LIBFUZZER_FLAGS]
#
# Defaults: variant v1, every configuration, one worker, until interrupted (Ctrl-C), corpus in
# out/corpus, buckets and summary.json in out/crashes.  See docs/campaigns.md.
set -euo pipefail
# relative paths on the command line (c:PATCH, --kernel-tree) are the caller's, not the repo's
export IOPGFUZZ_CWD="${IOPGFUZZ_CWD:-$PWD}"
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv "fuzz,test"
# a C world (--variant c:..., --reference c) needs a kernel tree: fetched once into the cache
case " $* " in
    *" c:"* | *"=c:"* | *" --reference"*) . ./scripts/fetch_kernel.sh; ensure_kernel_tree || true ;;
esac
exec "$VENV/bin/python" -m fuzz campaign "$@"

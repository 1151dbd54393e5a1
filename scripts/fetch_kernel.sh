# Sourced by run_tests.sh and run_fuzz.sh after scripts/venv.sh: make sure the default kernel
# tree for C worlds (Debian's linux-source-6.12, only the files a build needs) is in the cache.
# Skipped when IOPGFUZZ_KERNEL_TREE names a tree.  The cache path is computed here as
# cworld/source.py computes it, so that the common case (already fetched) costs no Python start.
# Returns non-zero when the fetch fails; the error is printed.

ensure_kernel_tree() {
    [ -z "${IOPGFUZZ_KERNEL_TREE:-}" ] || return 0
    local cache tree
    if [ -n "${IOPGFUZZ_CACHE:-}" ]; then
        cache="$IOPGFUZZ_CACHE"
    elif [ -n "${XDG_CACHE_HOME:-}" ]; then
        cache="$XDG_CACHE_HOME/iopgfuzz"
    else
        cache="$HOME/.cache/iopgfuzz"
    fi
    tree="$cache/kernel/linux-source-6.12"
    [ -d "$tree" ] && return 0
    echo "fetching Debian linux-source-6.12 into $tree (once, about 20 s) ..." >&2
    if ! "${VENV:-.venv}/bin/python" -m cworld.source --fetch >/dev/null; then
        echo "warning: no kernel tree for C worlds; retry with" \
             "'${VENV:-.venv}/bin/python -m cworld.source --fetch' or set IOPGFUZZ_KERNEL_TREE" >&2
        return 1
    fi
}

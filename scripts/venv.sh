# Sourced by run_fuzz.sh and run_tests.sh: create or refresh .venv with the extras asked for.
# A stamp records the pyproject.toml hash and the extras installed, so an edit of pyproject.toml
# re-installs automatically, and a venv that already has more extras than asked (run_tests.sh
# installs "report" too) is used as it is.
VENV="${IOPGFUZZ_VENV:-.venv}"

ensure_venv() {
    local want_extras="$1"
    local hash have have_hash have_extras all
    hash="$(sha256sum pyproject.toml | cut -c1-16)"
    have="$(cat "$VENV/.iopgfuzz-stamp" 2>/dev/null || true)"
    have_hash="${have%%-*}"
    have_extras="${have#*-}"
    [ -n "$have" ] || have_extras=""
    # the union of what is installed and what is wanted, sorted, comma-separated
    all="$(printf '%s,%s' "$have_extras" "$want_extras" | tr ',' '\n' | sed '/^$/d' \
           | LC_ALL=C sort -u | paste -sd, -)"
    if [ -x "$VENV/bin/python" ] && [ "$have_hash" = "$hash" ] && [ "$all" = "$have_extras" ]; then
        return 0
    fi
    echo "setting up $VENV ($all) ..." >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q -e ".[$all]" >&2
    echo "$hash-$all" > "$VENV/.iopgfuzz-stamp"
}

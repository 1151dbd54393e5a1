# Sourced by run_fuzz.sh and run_tests.sh: create or refresh .venv with the extras asked for.
# A stamp records the pyproject.toml hash and extras, so an edit re-installs automatically.
VENV="${IOPGFUZZ_VENV:-.venv}"

ensure_venv() {
    local extras="$1"
    local want
    want="$(sha256sum pyproject.toml | cut -c1-16)-$extras"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.iopgfuzz-stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "setting up $VENV ($extras) ..." >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q -e ".[$extras]" >&2
    echo "$want" > "$VENV/.iopgfuzz-stamp"
}

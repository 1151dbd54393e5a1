"""The C that `python -m fuzz export FILE --format kunit` writes compiles.

Every reproducer under crashes/ (each variant's folder, exported for that variant), every input
of corpus/differential/ and the small scenario of test_minimize_export.py is exported, wrapped
the way the export's header comment tells the user (the body, then KUNIT_CASE(name) in the
suite's cases array), and checked with `gcc -fsyntax-only -Werror` and the kernel's warnings
against tests/kunit_stub/kernel_stub.h: a hand-written stand-in for the kernel declarations the
body uses (see that file for what this proves and what it does not).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fuzz.repro.export import export_file

ROOT = Path(__file__).resolve().parent.parent
STUB_DIR = Path(__file__).resolve().parent / "kunit_stub"
GCC = shutil.which("gcc")

pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the exported KUnit C "
                                "cannot be compile-checked")

# -Wall -Wextra, plus what the kernel adds by default or at W=1 and W=2 that a pasted test body
# can trip over (scripts/Makefile.extrawarn).  -nostdinc as in a kernel build: nothing may come
# from the host's C library headers.
CFLAGS = ["-std=gnu11", "-fsyntax-only", "-nostdinc", "-Werror", "-Wall", "-Wextra",
          "-Wno-unused-parameter", "-Wundef",
          "-Wvla", "-Wstrict-prototypes", "-Wold-style-definition", "-Wmissing-prototypes",
          "-Wmissing-declarations", "-Wshadow", "-Wmissing-field-initializers"]

# The rest of io-pgtable-arm-selftests.c that the body is pasted into: the suite.
SUITE = """
static struct kunit_case io_pgtable_arm_test_cases[] = {{
\tKUNIT_CASE({case}),
\t{{}},
}};

static struct kunit_suite io_pgtable_arm_test = {{
\t.name = "io-pgtable-arm-test",
\t.test_cases = io_pgtable_arm_test_cases,
}};

kunit_test_suite(io_pgtable_arm_test);
"""


def _inputs() -> list[tuple[Path, str]]:
    """(input, variant): crashes/<variant>/*.ops for their variant, the corpus for v1."""
    # crashes/upstream/ holds the reference's own findings: exported for `fixed`, a walker
    out = [(p, {"upstream": "fixed"}.get(p.parent.name, p.parent.name))
           for p in sorted((ROOT / "crashes").glob("*/*.ops"))]
    out += [(p, "v1") for p in sorted((ROOT / "corpus" / "differential").glob("*.ops"))]
    return out


INPUTS = _inputs()


def kunit_translation_unit(text: str, name: str) -> str:
    """The exported body in a .c file: the stub, the body (gcc reports its lines as `name`'s)
    and the suite with the KUNIT_CASE the header comment asks for."""
    cases = set(re.findall(r"add KUNIT_CASE\((\w+)\) to the suite", text))
    assert len(cases) == 1, f"the header comment names {sorted(cases) or 'no'} KUNIT_CASE"
    return (f'#include "kernel_stub.h"\n#line 1 "{name}"\n{text}'
            + SUITE.format(case=cases.pop()))


def gcc_check(c_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([GCC, *CFLAGS, "-I", str(STUB_DIR), str(c_file)],
                          capture_output=True, text=True, check=False)


def assert_compiles(text: str, name: str, tmp_path: Path) -> None:
    c_file = tmp_path / f"{Path(name).stem}.c"
    c_file.write_text(kunit_translation_unit(text, name))
    r = gcc_check(c_file)
    assert r.returncode == 0, f"gcc rejects the KUnit export of {name}:\n{r.stderr}"


def test_inputs_found():
    assert len([p for p, _ in INPUTS if p.parent.parent.name == "crashes"]) >= 12
    assert {v for _, v in INPUTS} >= {"v1"}


@pytest.mark.parametrize(("path", "variant"), INPUTS,
                         ids=[f"{p.parent.name}/{p.stem}" for p, _ in INPUTS])
def test_kunit_export_compiles(path, variant, tmp_path):
    text, _ = export_file(str(path), "kunit", variant)
    assert_compiles(text, f"{path.relative_to(ROOT)}.kunit.c", tmp_path)
    assert max(len(ln.expandtabs(8)) for ln in text.splitlines()) <= 100   # kernel style


def test_kunit_export_of_small_scenario_compiles(tmp_path):
    from test_minimize_export import KUNIT_SCENARIO

    src = tmp_path / "small.ops"
    src.write_text(KUNIT_SCENARIO)
    text, _ = export_file(str(src), "kunit", "v1")
    assert_compiles(text, "small.ops.kunit.c", tmp_path)


def test_stub_catches_mistakes(tmp_path):
    """The check can fail: a misspelled field, a wrong argument count, a size_t compared with an
    int, an unused local and a pointer compared with an integer are each rejected."""
    text, _ = export_file(str(ROOT / "crashes" / "v1" / "resync.ops"), "kunit", "v1")
    assert_compiles(text, "resync.c", tmp_path)
    broken = {
        "field": text.replace(".pgsize_bitmap\t=", ".pgsize_bitmask\t=", 1),
        "arguments": text.replace("GFP_KERNEL, &mapped);", "&mapped);", 1),
        "sign-compare": text.replace("(size_t)SZ_", "SZ_", 1),
        "unused": text.replace("\tstruct device *dev;", "\tstruct device *dev;\n\tint unused;"),
        "pointer": text.replace("KUNIT_EXPECT_EQ(test, ret, 0);",
                                "KUNIT_EXPECT_EQ(test, ops, 0);", 1),
    }
    for what, bad in broken.items():
        assert bad != text, what
        c_file = tmp_path / f"broken-{what}.c"
        c_file.write_text(kunit_translation_unit(bad, c_file.name))
        r = gcc_check(c_file)
        assert r.returncode != 0, f"gcc accepts the {what} mistake"
        assert "error" in r.stderr, (what, r.stderr)

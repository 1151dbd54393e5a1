"""`python -m fuzz kunit TEST.c --variant c:...`: run a KUnit test against the real C.

TEST.c is C as it would be pasted into the KUnit version of
drivers/iommu/io-pgtable-arm-selftests.c (what `python -m fuzz export --format kunit` writes):
test functions `static void NAME(struct kunit *test)` and, optionally, its own
`kunit_test_suite()`.  It is compiled after a stand-in for the top of that file (the includes,
`cfg_cookie`, `dummy_tlb_ops`), against cworld/kunit's stand-in KUnit headers and the shim,
and linked with the kernel tree's io-pgtable-arm.c (patched as the variant says, built as for a
C world but with its DMA calls going through the device's dma_map_ops) and the runner
(cworld/kunit/kunit.c).  Without a suite of its own, every test function becomes a case of one
suite, in the order of the file.

The variant decides `IOPGFUZZ_DEFERRED_SYNC`: 1 when the patched tree has PATCH 1/2's
`defer_sync_pte` and `iotlb_sync_map` and the driver half is not `@none` (the test then sets
the flag and calls the op where the driver would), else 0.  `@posted` and `@review` run the
same test: it calls the io-pgtable op directly, not PATCH 2/2's driver.

Exit codes: 0 every case passed, 1 one failed (or the runner crashed), 2 it does not build
(the compiler's first error is printed) or the input cannot be read.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from model.errors import IopgfuzzError

from .build import BuildError, build_kunit, detect_features
from .patches import apply_patches
from .source import find_tree
from .variant import CVariant, parse_c_spec

#: The top of io-pgtable-arm-selftests.c that a pasted test relies on (written for iopgfuzz)
PRELUDE = """\
#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/io-pgtable.h>
#include <linux/kernel.h>

static struct io_pgtable_cfg *cfg_cookie;

static void dummy_tlb_flush_all(void *cookie)
{
\tWARN_ON(cookie != cfg_cookie);
}

static void dummy_tlb_flush(unsigned long iova, size_t size, size_t granule, void *cookie)
{
\tWARN_ON(cookie != cfg_cookie);
\tWARN_ON(!(size & cfg_cookie->pgsize_bitmap));
}

static void dummy_tlb_add_page(struct iommu_iotlb_gather *gather, unsigned long iova,
\t\t\t       size_t granule, void *cookie)
{
\tdummy_tlb_flush(iova, granule, granule, cookie);
}

static const struct iommu_flush_ops dummy_tlb_ops = {
\t.tlb_flush_all\t= dummy_tlb_flush_all,
\t.tlb_flush_walk\t= dummy_tlb_flush,
\t.tlb_add_page\t= dummy_tlb_add_page,
};
"""

_CASE = re.compile(r"^static\s+void\s+(\w+)\s*\(\s*struct\s+kunit\s*\*\s*\w+\s*\)\s*$", re.M)
#: `iopgfuzz kunit: page_size=64K line=128` in a header comment: how the exported test runs here
_RUN_TAG = re.compile(r"iopgfuzz kunit:((?:\s+\w+=\w+)+)")


class KunitError(IopgfuzzError):
    """The test cannot be run: unreadable, no test function, a bad option."""


@dataclass
class KunitResult:
    code: int            # 0 pass, 1 fail, 2 does not build
    output: str          # the runner's KTAP output, or the build error


def test_unit(text: str, name: str) -> str:
    """The translation unit: the prelude, the test (reported by gcc as `name`), the suite."""
    cases = _CASE.findall(text)
    unit = PRELUDE + f'#line 1 "{name}"\n' + text
    if not re.search(r"^\s*kunit_test_suites?\s*\(", text, re.M):
        if not cases:
            raise KunitError(f"{name}: no test function (static void NAME(struct kunit *test))"
                             " and no kunit_test_suite()")
        unit += '\n#line 1 "<iopgfuzz suite>"\nstatic struct kunit_case iopgfuzz_cases[] = {\n'
        unit += "".join(f"\tKUNIT_CASE({c}),\n" for c in cases)
        unit += ("\t{}\n};\n\nstatic struct kunit_suite iopgfuzz_suite = {\n"
                 '\t.name = "io-pgtable-arm-iopgfuzz",\n\t.test_cases = iopgfuzz_cases,\n};\n\n'
                 "kunit_test_suite(iopgfuzz_suite);\n")
    return unit


def run_options(text: str) -> dict[str, int]:
    """The `iopgfuzz kunit: key=value ...` tag of an exported test: page_size, line."""
    out: dict[str, int] = {}
    m = _RUN_TAG.search(text)
    if m:
        for item in m.group(1).split():
            key, _, value = item.partition("=")
            out[key] = _size(value)
    return out


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        raise KunitError(f"not a size: {text!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def _version_code(version: str) -> int:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    return (parts[0] << 16) + (parts[1] << 8) + min(parts[2], 255)


def build(test_path: Path, variant: CVariant, extra_defines: tuple = ()) -> Path:
    """The runner executable for `test_path` and the variant's tree (cached by content)."""
    try:
        text = test_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KunitError(f"{test_path}: cannot read: {e}") from e
    tree = find_tree(variant.kernel_tree)
    deferred = bool(variant.patches) and variant.driver != "none"
    with tempfile.TemporaryDirectory(prefix="iopgfuzz-src-") as tmp:
        report = apply_patches(tree, list(variant.patches), Path(tmp) / "src")
        feats = detect_features(report.dest)
        deferred = deferred and {"defer_sync_pte", "iotlb_sync_map"} <= feats
        defines = (f"-DIOPGFUZZ_LINUX_VERSION_CODE={_version_code(tree.version)}",
                   f"-DIOPGFUZZ_DEFERRED_SYNC={int(deferred)}") + tuple(extra_defines)
        return build_kunit(report.dest, test_unit(text, test_path.name), test_path.name,
                           variant.compiler, defines)


def run(test_path: str | Path, variant_spec: str, kernel_tree: str | None = None,
        compiler: str | None = None, line: int | None = None, page_size: int | None = None,
        extra_defines: tuple = (), timeout: float = 300) -> KunitResult:
    """Build and run; `line` and `page_size` default to the test's `iopgfuzz kunit:` tag, else
    64 and 4K.  Raises KunitError (and the variant's errors) for what is not the test's fault."""
    path = Path(test_path)
    variant = parse_c_spec(variant_spec)
    if kernel_tree:
        variant.kernel_tree = kernel_tree
    if compiler:
        variant.compiler = compiler
    try:
        exe = build(path, variant, extra_defines)
    except BuildError as e:
        return KunitResult(2, str(e))
    opts = run_options(path.read_text(encoding="utf-8"))
    args = [str(exe), "--line", str(line or opts.get("line", 64)),
            "--page-size", str(page_size or opts.get("page_size", 4096))]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return KunitResult(1, out + f"\n# the test did not finish in {timeout:.0f} s\n")
    out = r.stdout + r.stderr
    if r.returncode in (0, 1):
        return KunitResult(r.returncode, out)
    if r.returncode == 2:
        raise KunitError(f"the KUnit runner refused its options: {out.strip()}")
    return KunitResult(1, out + f"\n# the runner crashed (exit status {r.returncode}): the test "
                       "fails, as a kernel oops fails a KUnit case\n")

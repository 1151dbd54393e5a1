"""Compile a kernel tree's io-pgtable-arm.c (with patches) into a shared library, cached.

The kernel C is compiled unmodified, in one translation unit with `shim/glue.c`, against the
shim headers, with `-fsanitize=kernel-address` in outline mode: every load and store through a
pointer calls the runtime's hook first, which is how the runtime sees the CPU's accesses to
table memory.  Inlining, sibling calls and frame-pointer omission are off so that the runtime
can tell the call sites of a clean apart by the return addresses on the stack.

A build is cached under `<cache>/builds/<key>/`, where the key hashes everything that goes in:
the kernel files after patching, the shim, the flags and the compiler's version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import IopgfuzzError

from .source import cache_root, detect_iommu_pages_api

SHIM = Path(__file__).parent / "shim"

#: Flags of the kernel translation unit: the kernel's own semantics (-fno-strict-overflow,
#: -fno-strict-aliasing, -fno-delete-null-pointer-checks), the access hooks, and what the
#: call-site attribution needs.
KERNEL_FLAGS = (
    "-std=gnu11", "-O1", "-g", "-fPIC", "-D__KERNEL__", "-DCONFIG_IOMMU_IO_PGTABLE_LPAE=1",
    "-fno-strict-aliasing", "-fno-strict-overflow", "-fno-delete-null-pointer-checks",
    "-fno-common", "-fno-inline", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls",
    # a store loop turned into a call of libc's memset would store past the access hooks
    "-fno-builtin",
    "-Wall", "-Wno-unused-function", "-Wno-unused-variable",
    # a kernel interface the shim lacks must stop the build, not become an implicit int
    "-Werror=implicit-function-declaration", "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
)
#: The checks of CONFIG_UBSAN that make sense for this code (shim/ubsan.c reports them as
#: events and the kernel code goes on, as lib/ubsan.c does; signed overflow is defined under
#: -fno-strict-overflow), and the edge counter of coverage and the work budget (shim/sancov.c).
CHECK_FLAGS = ("-fsanitize=shift,bounds,bool,enum,unreachable,integer-divide-by-zero,vla-bound",
               "-fsanitize-coverage=trace-pc")
GCC_HOOK_FLAGS = ("-fno-tree-loop-distribute-patterns", "-fsanitize=kernel-address",
                  "--param=asan-instrumentation-with-call-threshold=0",
                  "--param=asan-stack=0", "--param=asan-globals=0")
CLANG_HOOK_FLAGS = ("-fsanitize=kernel-address",
                    "-mllvm", "-asan-instrumentation-with-call-threshold=0",
                    "-mllvm", "-asan-stack=0", "-mllvm", "-asan-globals=0")
RUNTIME_FLAGS = ("-std=gnu11", "-O2", "-g", "-fPIC", "-fno-omit-frame-pointer", "-Wall")
#: What the kernel code calls, compiled without instrumentation (shim/*.c but glue.c)
RUNTIME_FILES = ("runtime", "ubsan", "sancov", "cpu")
LINK_FLAGS = ("-shared", "-Wl,-Bsymbolic", "-Wl,-z,defs")
#: Bumped whenever build.json or the way a build is made changes (part of the cache key).
BUILD_SCHEMA = 2


class BuildError(IopgfuzzError):
    """The C world could not be built; the message names the compiler's first error."""


@dataclass(frozen=True)
class Built:
    """A built library and what the runtime needs to know about it."""

    lib: Path
    key: str
    features: frozenset          # "defer_sync_pte", "iotlb_sync_map"
    symbols: tuple               # ((offset, size, name), ...) sorted by offset
    source_dir: Path             # the patched private copy the library was built from
    notes: tuple = field(default=())   # what patch application reported (skipped hunks, fuzz)
    warn_sites: dict = field(default_factory=dict)  # line -> (function, condition, ordinal)


def _compiler(kind: str) -> list[str]:
    exe = {"gcc": ["gcc", "gcc-12"], "clang": ["clang", "clang-19", "clang-16", "clang-14"]}[kind]
    for name in exe:
        path = shutil.which(name)
        if path:
            return [path]
    raise BuildError(f"no {kind} compiler found (looked for {', '.join(exe)}); "
                     f"install it (Debian: apt-get install {kind})")


def _version(cc: list[str]) -> str:
    return subprocess.run(cc + ["--version"], capture_output=True, text=True).stdout.split("\n")[0]


def detect_features(src: Path) -> frozenset:
    """What the (patched) io-pgtable.h declares: PATCH 1/2's two members, by their names."""
    header = (src / "include/linux/io-pgtable.h").read_text(errors="replace")
    feats = set()
    cfg = _struct_body(header, "io_pgtable_cfg")
    ops = _struct_body(header, "io_pgtable_ops")
    if re.search(r"\bdefer_sync_pte\s*;", cfg):
        feats.add("defer_sync_pte")
    if re.search(r"\(\s*\*\s*iotlb_sync_map\s*\)", ops):
        feats.add("iotlb_sync_map")
    return frozenset(feats)


def _struct_body(text: str, name: str) -> str:
    m = re.search(r"struct\s+" + name + r"\s*\{", text)
    if not m:
        return ""
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i]


def _hash_inputs(src: Path, flags: list[str], version: str, extra: tuple = ()) -> str:
    """The cache key: the kernel files, the shim, the flags, the compiler's version and, for a
    KUnit runner, its own sources and the test (`extra`: (name, bytes) pairs)."""
    h = hashlib.sha256()
    for p in sorted(src.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes() + b"\0")
    for p in sorted(SHIM.rglob("*")):
        if p.is_file() and p.suffix in (".c", ".h"):
            h.update(str(p.relative_to(SHIM)).encode() + b"\0" + p.read_bytes() + b"\0")
    for name, data in extra:
        h.update(b"extra\0" + name.encode() + b"\0" + data + b"\0")
    h.update("\0".join(flags).encode() + b"\0" + version.encode())
    h.update(f"schema {BUILD_SCHEMA}".encode())
    return h.hexdigest()[:20]


def _kernel_defines(src: Path, features: frozenset) -> list[str]:
    defines = []
    if "defer_sync_pte" in features:
        defines.append("-DIOPGFUZZ_HAS_DEFER_SYNC_PTE")
    if "iotlb_sync_map" in features:
        defines.append("-DIOPGFUZZ_HAS_IOTLB_SYNC_MAP")
    if detect_iommu_pages_api(src / "drivers/iommu/io-pgtable-arm.c") == "size":
        defines.append("-DIOPGFUZZ_IOMMU_PAGES_SZ")
    return defines


def _kernel_flags(src: Path, compiler: str, features: frozenset, extra_flags: tuple) -> list[str]:
    """The flags of the kernel translation unit (glue.c, which includes the kernel C)."""
    hooks = GCC_HOOK_FLAGS if compiler == "gcc" else CLANG_HOOK_FLAGS
    return list(KERNEL_FLAGS) + list(hooks) + list(CHECK_FLAGS) + \
        _kernel_defines(src, features) + list(extra_flags)


def _run_build(key: str, src: Path, steps, finish) -> Path:
    """Build into the cache folder of `key` unless it is there: copy the patched sources to a
    temporary folder, run `steps(tmp, copied_src)` (a list of commands) one by one, let
    `finish(tmp, copied_src)` write what else belongs to the build, then move the folder into
    place.  A failed command keeps its folder as `<key>.failed` (the last failure of the key
    only) and raises BuildError naming the compiler's first error."""
    out = cache_root() / "builds" / key
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=out.parent))
    try:
        shutil.copytree(src, tmp / "src")
        s = tmp / "src"
        log = []
        for cmd in steps(tmp, s):
            r = subprocess.run(cmd, capture_output=True, text=True)
            log.append(" ".join(cmd) + "\n" + r.stdout + r.stderr)
            if r.returncode:
                failed = out.parent / f"{key}.failed"
                (tmp / "build.log").write_text("\n".join(log))
                shutil.rmtree(failed, ignore_errors=True)
                os.rename(tmp, failed)
                raise BuildError(_first_error(r.stderr, s) +
                                 f"\n(full log: {failed / 'build.log'})")
        (tmp / "build.log").write_text("\n".join(log))
        finish(tmp, s)
        try:
            os.rename(tmp, out)
        except OSError:          # another process built the same key meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)    # a failed compile was kept as <key>.failed
        raise
    return out


def _kernel_compile(cc: list[str], flags: list[str], s: Path, obj: Path) -> list[str]:
    return cc + flags + [f"-I{s}/include", f"-I{SHIM}/include", f"-I{SHIM}",
                         "-iquote", f"{s}/drivers/iommu", "-c", str(SHIM / "glue.c"),
                         "-o", str(obj)]


def _runtime_compiles(cc: list[str], tmp: Path) -> list[list[str]]:
    return [cc + list(RUNTIME_FLAGS) + [f"-I{SHIM}", "-c", str(SHIM / f"{name}.c"),
                                        "-o", str(tmp / f"{name}.o")]
            for name in RUNTIME_FILES]


def build_from_source(src: Path, compiler: str = "gcc", extra_flags: tuple = (),
                      notes: tuple = ()) -> Built:
    """Build (or find in the cache) the library for the kernel files in `src`, which holds
    drivers/iommu/io-pgtable-arm.c, drivers/iommu/io-pgtable.c, include/linux/io-pgtable.h
    (and io-pgtable-arm.h where the tree has one), already patched."""
    cc = _compiler(compiler)
    features = detect_features(src)
    flags = _kernel_flags(src, compiler, features, extra_flags)
    version = _version(cc)
    key = _hash_inputs(src, flags, version)
    out = cache_root() / "builds" / key
    lib = out / "libiopgfuzz-kernel.so"
    if lib.is_file() and (out / "build.json").is_file():
        return _load_built(out)

    def steps(tmp: Path, s: Path):
        link = cc + list(LINK_FLAGS) + ["-o", str(tmp / lib.name), str(tmp / "kernel.o")] + \
            [str(tmp / f"{name}.o") for name in RUNTIME_FILES]
        return [_kernel_compile(cc, flags, s, tmp / "kernel.o"), *_runtime_compiles(cc, tmp),
                link]

    def finish(tmp: Path, s: Path):
        (tmp / "build.json").write_text(json.dumps(
            {"features": sorted(features), "symbols": read_symbols(tmp / lib.name),
             "flags": flags, "compiler": version, "notes": list(notes),
             "warn_sites": scan_warn_sites(s / "drivers/iommu/io-pgtable-arm.c")}))

    return _load_built(_run_build(key, src, steps, finish))


#: The KUnit stand-in (cworld/kunit): its headers come before the shim's in the test's path
KUNIT = Path(__file__).parent / "kunit"


def build_kunit(src: Path, test_unit: str, test_name: str, compiler: str = "gcc",
                test_defines: tuple = ()) -> Path:
    """Build (or find in the cache) an executable that runs a KUnit test against the kernel
    files in `src`: the kernel translation unit as for `build_from_source` but with
    `-DIOPGFUZZ_KUNIT` (its DMA calls go to the device's dma_map_ops), the runtime, the KUnit
    stand-in (cworld/kunit/kunit.c, the runner's main) and `test_unit`, the C text of the test
    translation unit (cworld/kunit.py writes it around the user's file, which gcc reports as
    `test_name`).  The test unit is not instrumented: it is the test, not the code under test.
    Returns the executable's path."""
    cc = _compiler(compiler)
    features = detect_features(src)
    flags = _kernel_flags(src, compiler, features, ("-DIOPGFUZZ_KUNIT",))
    test_flags = ["-std=gnu11", "-O1", "-g", "-D__KERNEL__", "-DIOPGFUZZ_KUNIT",
                  "-DCONFIG_IOMMU_IO_PGTABLE_LPAE=1", "-fno-strict-aliasing",
                  "-fno-strict-overflow", "-fno-delete-null-pointer-checks", "-fno-common",
                  "-Wall", "-Wno-unused-function", "-Werror=implicit-function-declaration",
                  "-Werror=int-conversion", "-Werror=incompatible-pointer-types",
                  *_kernel_defines(src, features), *test_defines]
    version = _version(cc)
    kunit_files = tuple((str(p.relative_to(KUNIT)), p.read_bytes())
                        for p in sorted(KUNIT.rglob("*"))
                        if p.is_file() and p.suffix in (".c", ".h"))
    key = _hash_inputs(src, flags + ["--test"] + test_flags, version,
                       kunit_files + (("test.c", test_unit.encode()),))
    out = cache_root() / "builds" / key
    exe = out / "iopgfuzz-kunit"
    if exe.is_file():
        return exe
    include = [f"-I{KUNIT}/include"]

    def steps(tmp: Path, s: Path):
        (tmp / "test.c").write_text(test_unit)
        paths = include + [f"-I{s}/include", f"-I{SHIM}/include", f"-I{SHIM}"]
        return [_kernel_compile(cc, flags, s, tmp / "kernel.o"), *_runtime_compiles(cc, tmp),
                cc + list(RUNTIME_FLAGS) + ["-DIOPGFUZZ_KUNIT"] + paths +
                ["-c", str(KUNIT / "kunit.c"), "-o", str(tmp / "kunit.o")],
                cc + test_flags + paths + ["-iquote", f"{s}/drivers/iommu", "-c",
                                           str(tmp / "test.c"), "-o", str(tmp / "test.o")],
                cc + ["-o", str(tmp / exe.name), str(tmp / "kernel.o"), str(tmp / "kunit.o"),
                      str(tmp / "test.o")] + [str(tmp / f"{n}.o") for n in RUNTIME_FILES]]

    def finish(tmp: Path, s: Path):
        (tmp / "build.json").write_text(json.dumps(
            {"kind": "kunit", "test": test_name, "features": sorted(features), "flags": flags,
             "test_flags": test_flags, "compiler": version}))

    return _run_build(key, src, steps, finish) / exe.name


def _load_built(out: Path) -> Built:
    m = json.loads((out / "build.json").read_text())
    return Built(out / "libiopgfuzz-kernel.so", out.name, frozenset(m["features"]),
                 tuple(map(tuple, m["symbols"])), out / "src", tuple(m.get("notes", ())),
                 {int(k): tuple(v) for k, v in m.get("warn_sites", {}).items()})


def _first_error(stderr: str, src: Path) -> str:
    lines = [ln for ln in stderr.splitlines() if re.search(r":\d+(:\d+)?: (fatal )?error:", ln)] \
        or [ln for ln in stderr.splitlines() if " error" in ln or ln.startswith("error")]
    first = lines[0] if lines else (stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"building the C world failed: {first.replace(str(src) + '/', '')}"


#: A function definition's first line in kernel style (name at column 0, no `;`, no `=`)
_FUNC_DEF = re.compile(r"^[A-Za-z_][^;=]*?\b(\w+)\s*\(")
_WARN = re.compile(r"\bWARN_ON(?:_ONCE)?\s*\(")


def scan_warn_sites(c_file: Path) -> dict:
    """{line: [function, condition, ordinal]} of every WARN_ON in a C file: the condition as
    the preprocessor stringifies it, and which of the function's WARN_ONs with that same
    condition it is (two `WARN_ON(!pte)` in __arm_lpae_unmap are different checks)."""
    sites, func, seen = {}, "?", {}
    lines = c_file.read_text(errors="replace").splitlines()
    for no, line in enumerate(lines, 1):
        m = _FUNC_DEF.match(line)
        if m and not line.rstrip().endswith(";"):
            func = m.group(1)
        for w in _WARN.finditer(line):
            text = line[w.end():] + "\n" + "\n".join(lines[no:no + 5])
            depth, cond = 1, []
            for ch in text:
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth == 0:
                    break
                cond.append(ch)
            c = " ".join("".join(cond).split())
            k = seen[(func, c)] = seen.get((func, c), 0) + 1
            sites[no] = [func, c, k]
    return sites


def read_symbols(lib: Path) -> list:
    """[(offset, size, name)] of the library's functions, for naming return addresses."""
    r = subprocess.run(["nm", "-S", "--defined-only", str(lib)], capture_output=True, text=True)
    syms = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    syms.sort()
    return syms

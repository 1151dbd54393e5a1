"""Find the kernel tree a C world is built from, or fetch Debian's linux-source-6.12 into a cache.

Kernel source is never committed: a tree is named with `--kernel-tree DIR`, with the environment
variable IOPGFUZZ_KERNEL_TREE, or is the default tree in the cache (outside the git work tree),
which `python -m cworld.source --fetch` fills from Debian's `linux-source-6.12` package.  Only
the few files a build compiles are kept (FILES, plus the top Makefile for the version).

`fetch_default_tree` is the only function of this package that touches the network.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from model.errors import IopgfuzzError

ARM_C = "drivers/iommu/io-pgtable-arm.c"
IO_PGTABLE_C = "drivers/iommu/io-pgtable.c"
ARM_H = "drivers/iommu/io-pgtable-arm.h"
IO_PGTABLE_H = "include/linux/io-pgtable.h"

#: The files a build needs, relative to the tree root.
FILES: tuple[str, ...] = (ARM_C, IO_PGTABLE_C, ARM_H, IO_PGTABLE_H)
#: Newer kernels folded io-pgtable-arm.h into io-pgtable-arm.c; a tree may lack it.
OPTIONAL_FILES: frozenset[str] = frozenset({ARM_H})
REQUIRED_FILES: tuple[str, ...] = tuple(f for f in FILES if f not in OPTIONAL_FILES)
#: Read for the version only, never compiled.
MAKEFILE = "Makefile"

DEBIAN_PACKAGE = "linux-source-6.12"
DEFAULT_TREE_NAME = DEBIAN_PACKAGE
TARBALL_MEMBER = f"./usr/src/{DEBIAN_PACKAGE}.tar.xz"
ORIGIN_FILE = ".iopgfuzz-origin"
FETCH_COMMAND = "python -m cworld.source --fetch"

ORIGIN_ARG = "--kernel-tree"
ORIGIN_ENV = "IOPGFUZZ_KERNEL_TREE"
ORIGIN_CACHE = f"debian {DEBIAN_PACKAGE} (cache)"

#: A `.fetch-*` work folder older than this is left over from a killed fetch and is removed.
STALE_FETCH_SECONDS = 3600


class KernelTreeError(IopgfuzzError):
    """A kernel tree cannot be used: missing, incomplete or unreadable."""


class KernelSourceMissing(KernelTreeError):
    """The default cache tree has not been fetched yet."""


class KernelApiUnsupported(KernelTreeError):
    """The tree's io-pgtable-arm.c uses a page-allocation API the shim does not provide."""


class FetchError(KernelTreeError):
    """Fetching Debian's kernel source failed (tool missing, no network, package not found)."""


@dataclass(frozen=True)
class KernelTree:
    """A kernel source tree holding at least the required FILES.

    `iommu_pages_api` is "order" (6.12: `iommu_alloc_pages_node(nid, gfp, order)`,
    `iommu_free_pages(virt, order)`) or "size" (later mainline:
    `iommu_alloc_pages_node_sz(nid, gfp, size)`, `iommu_free_pages(virt)`): the shim must
    provide the one the tree calls.
    """

    root: Path
    version: str
    origin: str
    iommu_pages_api: str

    def path(self, rel: str) -> Path:
        """The absolute path of `rel` (one of FILES) in this tree."""
        return self.root / rel

    def present_files(self) -> tuple[str, ...]:
        """FILES that this tree has (an optional file may be absent)."""
        return tuple(f for f in FILES if (self.root / f).is_file())

    def debian_package(self) -> str | None:
        """The .deb this tree was extracted from, when it was fetched by this module."""
        try:
            return (self.root / ORIGIN_FILE).read_text().strip() or None
        except OSError:
            return None

    def describe(self) -> str:
        """One line for humans: version, where, and how it was chosen."""
        deb = self.debian_package()
        origin = f"{self.origin}: {deb}" if deb else self.origin
        return f"Linux {self.version} at {self.root} ({origin}; iommu-pages API: " \
               f"{self.iommu_pages_api})"


# --- where things are -------------------------------------------------------------------------


def cache_root() -> Path:
    """IOPGFUZZ_CACHE, else $XDG_CACHE_HOME/iopgfuzz, else ~/.cache/iopgfuzz."""
    explicit = os.environ.get("IOPGFUZZ_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "iopgfuzz"
    return Path.home() / ".cache" / "iopgfuzz"


def default_tree_path() -> Path:
    """Where `fetch_default_tree` puts Debian's tree."""
    return cache_root() / "kernel" / DEFAULT_TREE_NAME


def find_tree(kernel_tree: str | Path | None = None) -> KernelTree:
    """The tree named by the argument, else by IOPGFUZZ_KERNEL_TREE, else the default cache tree.

    Raises KernelSourceMissing when falling back to a default tree that was never fetched, and
    KernelTreeError / KernelApiUnsupported when the chosen tree cannot be built.
    """
    if kernel_tree is not None and str(kernel_tree) != "":
        return load_tree(Path(kernel_tree), ORIGIN_ARG)
    env = os.environ.get(ORIGIN_ENV)
    if env:
        return load_tree(Path(env), ORIGIN_ENV)
    default = default_tree_path()
    if not default.is_dir():
        raise KernelSourceMissing(
            f"no kernel tree: the default tree {default} has not been fetched. "
            f"Fetch it (once, about 150 MB download, 20 s) with `{FETCH_COMMAND}` "
            f"(or `.venv/bin/{FETCH_COMMAND}` from the project folder), or name a tree with "
            f"--kernel-tree DIR or {ORIGIN_ENV}=DIR"
        )
    return load_tree(default, ORIGIN_CACHE)


def load_tree(root: Path, origin: str) -> KernelTree:
    """Check that `root` has the required files and read its version and page-allocation API."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise KernelTreeError(
            f"kernel tree {root} (from {origin}) is not a directory; "
            f"give the top folder of a Linux source tree"
        )
    for rel in (MAKEFILE, *REQUIRED_FILES):
        if not (root / rel).is_file():
            raise KernelTreeError(
                f"kernel tree {root} (from {origin}) lacks {rel}; a C world needs "
                f"{', '.join(REQUIRED_FILES)} and the top Makefile"
                + (f" (re-fetch with `{FETCH_COMMAND} --force`)" if origin == ORIGIN_CACHE else "")
            )
    version = read_version(root / MAKEFILE)
    api = detect_iommu_pages_api(root / ARM_C)
    return KernelTree(root=root, version=version, origin=origin, iommu_pages_api=api)


# --- reading the tree -------------------------------------------------------------------------


def _make_variable(text: str, name: str) -> str | None:
    """The value of a top-level `NAME = value` line of a Makefile, or None if absent."""
    m = re.search(rf"^{name}\s*:?=[ \t]*(.*?)[ \t]*$", text, re.MULTILINE)
    return m.group(1) if m else None


def read_version(makefile: Path) -> str:
    """The kernel version as the kernel's own KERNELVERSION computes it, e.g. "6.12.117".

    KERNELVERSION = $(VERSION)$(if $(PATCHLEVEL),.$(PATCHLEVEL)$(if $(SUBLEVEL),.$(SUBLEVEL)))
    $(EXTRAVERSION), so mainline 6.17 (SUBLEVEL = 0) is "6.17.0" and an rc is "6.18.0-rc1".
    """
    try:
        text = makefile.read_text(errors="replace")
    except OSError as e:
        raise KernelTreeError(f"cannot read {makefile}: {e}") from e
    version = _make_variable(text, "VERSION")
    if not version or not version.isdigit():
        raise KernelTreeError(
            f"{makefile} has no numeric `VERSION = N` line; is this the top Makefile of a "
            f"Linux source tree?"
        )
    patchlevel = _make_variable(text, "PATCHLEVEL") or ""
    sublevel = _make_variable(text, "SUBLEVEL") or ""
    extra = _make_variable(text, "EXTRAVERSION") or ""
    out = version
    if patchlevel:
        out += f".{patchlevel}"
        if sublevel:
            out += f".{sublevel}"
    return out + extra


def _strip_c_comments(src: str) -> str:
    """C source without comments, so that a call mentioned in a comment is not counted."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", src, flags=re.DOTALL)


def _call_arities(src: str, name: str) -> list[int]:
    """The number of arguments of each call of function `name` in comment-free `src`."""
    arities = []
    for m in re.finditer(rf"\b{re.escape(name)}\s*\(", src):
        depth, commas, i = 1, 0, m.end()
        empty = True
        while i < len(src) and depth:
            c = src[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == "," and depth == 1:
                commas += 1
            elif not c.isspace() and depth == 1:
                empty = False
            i += 1
        arities.append(0 if empty and not commas else commas + 1)
    return arities


def detect_iommu_pages_api(arm_c: Path) -> str:
    """"order", "size" or "page": which page-allocator API the tree's io-pgtable-arm.c calls.

    6.12's iommu-pages.h (order), the later size-based one, or, before 6.11, the page
    allocator itself (alloc_pages_node, page_address, free_pages); the shim provides all three.
    A tree that calls none of them or mixes them cannot be built, so this raises
    KernelApiUnsupported naming what was looked for and what was found.
    """
    src = _strip_c_comments(arm_c.read_text(errors="replace"))
    order_alloc = _call_arities(src, "iommu_alloc_pages_node")
    size_alloc = _call_arities(src, "iommu_alloc_pages_node_sz")
    frees = set(_call_arities(src, "iommu_free_pages"))
    looked_for = (
        "iommu_alloc_pages_node(nid, gfp, order) with iommu_free_pages(virt, order) [6.12], "
        "or iommu_alloc_pages_node_sz(nid, gfp, size) with iommu_free_pages(virt) [6.15+], "
        "or alloc_pages_node() with page_address() and free_pages() [before 6.11]"
    )
    if size_alloc and not order_alloc and frees <= {1}:
        return "size"
    if order_alloc and not size_alloc and frees <= {2}:
        return "order"
    if not (order_alloc or size_alloc or frees) and _call_arities(src, "alloc_pages_node"):
        return "page"            # before 6.11: alloc_pages_node/page_address/free_pages
    found = sorted(set(re.findall(r"\b(\w*(?:alloc|free)_pages\w*)\s*\(", src)))
    detail = ", ".join(f"{f}()" for f in found) or "no page allocation calls"
    if frees:
        detail += f"; iommu_free_pages() called with {sorted(frees)} argument(s)"
    raise KernelApiUnsupported(
        f"{arm_c}: unsupported page-allocation API. Looked for {looked_for}; found {detail}. "
        f"Use a 6.1, 6.12 or later kernel tree (e.g. the default: `{FETCH_COMMAND}`)"
    )


# --- fetching ---------------------------------------------------------------------------------


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _require_tools(*tools: str) -> None:
    """Fail early, naming the Debian package to install, when a fetch tool is missing."""
    packages = {"apt-get": "apt", "dpkg-deb": "dpkg", "tar": "tar", "xz": "xz-utils"}
    for tool in tools:
        if shutil.which(tool) is None:
            raise FetchError(
                f"cannot fetch {DEBIAN_PACKAGE}: `{tool}` is not installed "
                f"(Debian: apt-get install {packages.get(tool, tool)}); or name an existing "
                f"tree with --kernel-tree DIR or {ORIGIN_ENV}=DIR"
            )


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    """Run a fetch step; the caller decides what a non-zero exit means."""
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"{what} failed: {' '.join(cmd)}: {e}") from e


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise FetchError(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, proc.args))}\n  "
            + "\n  ".join(tail)
        )


def _download_deb(work: Path) -> Path:
    """`apt-get download` the package into `work`, running `apt-get update` only if needed."""
    what = f"downloading {DEBIAN_PACKAGE}"
    proc = _run(["apt-get", "download", DEBIAN_PACKAGE], work, what)
    if proc.returncode != 0 and "Unable to locate package" in proc.stderr + proc.stdout:
        update = _run(["apt-get", "update"], work, "apt-get update")
        if update.returncode != 0:
            raise FetchError(
                f"apt-get does not know {DEBIAN_PACKAGE} and `apt-get update` failed "
                f"(run `sudo apt-get update` and retry, or use --kernel-tree DIR):\n  "
                + "\n  ".join(update.stderr.strip().splitlines()[-3:])
            )
        proc = _run(["apt-get", "download", DEBIAN_PACKAGE], work, what)
    _check(proc, what + " (needs a Debian/Ubuntu apt source that has it, and the network)")
    debs = sorted(work.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise FetchError(f"{what}: apt-get succeeded but left no {DEBIAN_PACKAGE}_*.deb in {work}")
    return debs[-1]


def _extract_tarball(deb: Path, work: Path) -> Path:
    """Pull the one big source tarball out of the .deb (dpkg-deb | tar), then delete the .deb."""
    cmd = f"dpkg-deb --fsys-tarfile '{deb.name}' | tar -x '{TARBALL_MEMBER}'"
    proc = _run(["bash", "-o", "pipefail", "-c", cmd], work, f"unpacking {deb.name}")
    _check(proc, f"unpacking {deb.name}")
    deb.unlink()
    tarball = work / TARBALL_MEMBER
    if not tarball.is_file():
        raise FetchError(f"{deb.name} has no {TARBALL_MEMBER}")
    return tarball


def _extract_files(tarball: Path, work: Path) -> Path:
    """Extract only FILES and the Makefile from the tarball into `work/tree/`; return the tree.

    An optional file missing from the archive is fine (tar still extracts the others and exits
    2); a missing required file is an error.
    """
    out = work / "tree"
    out.mkdir()
    members = [f"{DEFAULT_TREE_NAME}/{rel}" for rel in (MAKEFILE, *FILES)]
    proc = _run(["tar", "-xJf", str(tarball), "-C", str(out), *members], work,
                f"extracting from {tarball.name}")
    tree = out / DEFAULT_TREE_NAME
    missing = [rel for rel in (MAKEFILE, *REQUIRED_FILES) if not (tree / rel).is_file()]
    if missing:
        _check(proc, f"extracting {', '.join(missing)} from {tarball.name}")
        raise FetchError(f"{tarball.name} lacks {', '.join(missing)}")
    return tree


def _sweep_stale_fetches(kernel_dir: Path) -> None:
    """Remove work folders left by fetches that were killed (older than STALE_FETCH_SECONDS)."""
    now = time.time()
    for stale in kernel_dir.glob(".fetch-*"):
        try:
            if now - stale.stat().st_mtime > STALE_FETCH_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def _install(tree: Path, dest: Path, force: bool) -> None:
    """Rename the complete `tree` to `dest` in one step; with `force`, replace an old one."""
    old = None
    if dest.exists() and force:
        old = dest.with_name(f".old-{dest.name}-{os.getpid()}")
        os.rename(dest, old)
    try:
        os.rename(tree, dest)
    except OSError:
        if not dest.is_dir():  # not a concurrent fetch that won the race: a real failure
            if old is not None:
                os.rename(old, dest)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fetch_default_tree(force: bool = False) -> KernelTree:
    """Download Debian's linux-source-6.12 and keep only FILES, as the default cache tree.

    Everything happens in a `.fetch-*` folder next to the final tree, which is renamed into
    place only when complete, so a killed fetch never leaves a half tree; the .deb and the big
    tarball are deleted.  Without `force`, an existing default tree is returned as it is.
    """
    dest = default_tree_path()
    if dest.is_dir() and not force:
        return load_tree(dest, ORIGIN_CACHE)
    project = _project_root()
    if dest.resolve().is_relative_to(project):
        raise FetchError(
            f"refusing to fetch kernel source into {dest}, inside the project {project}: "
            f"kernel source is never kept in the git work tree; set IOPGFUZZ_CACHE elsewhere"
        )
    _require_tools("apt-get", "dpkg-deb", "tar", "xz", "bash")
    kernel_dir = dest.parent
    kernel_dir.mkdir(parents=True, exist_ok=True)
    _sweep_stale_fetches(kernel_dir)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=kernel_dir))
    try:
        deb = _download_deb(work)
        deb_name = deb.name
        tarball = _extract_tarball(deb, work)
        tree = _extract_files(tarball, work)
        tarball.unlink()
        (tree / ORIGIN_FILE).write_text(deb_name + "\n")
        _install(tree, dest, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_tree(dest, ORIGIN_CACHE)


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m cworld.source [--fetch [--force]] [--kernel-tree DIR]`; exit 2 on error."""
    parser = argparse.ArgumentParser(
        prog="python -m cworld.source",
        description="Show the kernel tree C worlds are built from, or fetch the default one "
                    f"(Debian's {DEBIAN_PACKAGE}) into {default_tree_path()}.",
    )
    parser.add_argument("--fetch", action="store_true",
                        help="fetch the default tree if it is missing (uses the network)")
    parser.add_argument("--force", action="store_true",
                        help="with --fetch: fetch again even if the default tree exists")
    parser.add_argument("--kernel-tree", metavar="DIR", help="use this tree instead")
    args = parser.parse_args(argv)
    try:
        if args.fetch or args.force:
            tree = fetch_default_tree(force=args.force)
        else:
            tree = find_tree(args.kernel_tree)
    except IopgfuzzError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(tree.root)
    print(tree.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`c:upstream` and `c:PATCH[,PATCH...]`: variants whose io-pgtable is a C build of a tree.

The spec names what to build: `c:upstream` is the tree as it is; `c:a.patch,b.patch` applies
the patches in order (plain or quoted in a mail).  PATCH 2/2's half is the driver, which stays
the model's: `@posted` (the default) calls the op and returns 0 as the posted 2/2 does,
`@review` returns the op's value as the review asked, `@none` is a driver without 2/2 (no
callback, and `defer_sync_pte` left clear).  Otherwise, when the build's `struct
io_pgtable_cfg` has `defer_sync_pte`, the driver sets it, as 2/2's `arm_smmu_domain_finalise`
does; upstream has neither.

The kernel tree is `IOPGFUZZ_KERNEL_TREE`, else Debian's 6.12 in the cache (cworld.source);
the compiler `IOPGFUZZ_CC` (gcc, the default, or clang).  Campaign workers inherit both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from model.errors import IopgfuzzError
from model.variants import Variant
from model.variants.base import forwarding_driver_iotlb_sync_map, posted_driver_iotlb_sync_map

from .build import Built, build_from_source
from .patches import apply_patches
from .source import find_tree

DRIVERS = ("posted", "review", "none")
#: The reference world as C (`--reference c`): the tree without patches.
REFERENCE_SPEC = "c:upstream"


class CVariantError(IopgfuzzError):
    """A `c:` spec that cannot be understood (the message says what is expected)."""


class CVariant(Variant):
    """A C build as a variant; `make_world` gives the executor a `CWorld`."""

    kind = "c"

    def __init__(self, patches: tuple[Path, ...] = (), driver: str = "posted",
                 kernel_tree: str | None = None, compiler: str | None = None):
        if driver not in DRIVERS:
            raise CVariantError(f"unknown driver {driver!r} (one of {', '.join(DRIVERS)})")
        self.patches = tuple(Path(p) for p in patches)
        for p in self.patches:
            if not p.is_file():
                raise CVariantError(f"c: variant: no patch file {p}")
        self.driver = driver
        self.kernel_tree = kernel_tree
        self.compiler = compiler or os.environ.get("IOPGFUZZ_CC", "gcc")
        names = ",".join(p.name for p in self.patches) or "upstream"
        self.name = f"c:{names}" + ("" if driver == "posted" else f"@{driver}")
        self.description = f"the kernel C ({names}), built in userspace; driver {driver}"
        self._built: Built | None = None

    @property
    def spec(self) -> str:
        """The spec that rebuilds this variant in another process."""
        names = ",".join(str(p) for p in self.patches) or "upstream"
        return f"c:{names}" + ("" if self.driver == "posted" else f"@{self.driver}")

    def built(self) -> Built:
        if self._built is None:
            tree = find_tree(self.kernel_tree)
            with tempfile.TemporaryDirectory(prefix="iopgfuzz-src-") as tmp:
                report = apply_patches(tree, list(self.patches), Path(tmp) / "src")
                notes = tuple(report.notes) + tuple(
                    f"skipped comment-only hunk {h.header} of {h.file} in {h.patch}"
                    for h in report.skipped_hunks)
                self._built = build_from_source(report.dest, self.compiler, notes=notes)
            self.tree = tree
        return self._built

    @property
    def kernel_version(self) -> str:
        """The tree's version ("6.12.117"): Python worlds paired with this one model it."""
        self.built()
        return self.tree.version

    @property
    def defer_sync_pte(self) -> bool:
        return bool(self.patches) and self.driver != "none" and \
            "defer_sync_pte" in self.built().features

    def driver_iotlb_sync_map(self, pgtbl_ops):
        if self.driver == "none" or "iotlb_sync_map" not in self.built().features:
            return None
        if self.driver == "review":
            return forwarding_driver_iotlb_sync_map(pgtbl_ops)
        return posted_driver_iotlb_sync_map(pgtbl_ops)

    def make_world(self, config, budget):
        from .world import CWorld
        return CWorld(config, self, self.built(), budget)


def parse_c_spec(spec: str) -> CVariant:
    """`c:upstream[@driver]` or `c:PATCH[,PATCH...][@driver]`."""
    if not spec.startswith("c:"):
        raise CVariantError(f"{spec!r} is not a c: variant")
    body = spec[2:]
    driver = "posted"
    if "@" in body:
        body, _, driver = body.rpartition("@")
    if not body:
        raise CVariantError("c: needs 'upstream' or patch files: c:upstream, c:a.patch,b.patch")
    base = Path(os.environ.get("IOPGFUZZ_CWD", "."))     # run_fuzz.sh's caller's folder
    patches = () if body == "upstream" else \
        tuple(p if p.is_absolute() else (base / p).resolve() for p in map(Path, body.split(",")))
    return CVariant(patches, driver)

"""`export`: turn an input into a regression test.

* `pytest`: a self-contained test function that embeds the `.ops` text and checks that the
  variant still reports the finding signature(s) and that `reference` and `fixed` report none.
* `kunit`: a KUnit-style C test body for `drivers/iommu/io-pgtable-arm-selftests.c`: the
  `struct io_pgtable_cfg` of the config, then for every op the io-pgtable calls it comes down
  to (the `map_pages`/`unmap_pages` calls the iommu core splits it into, the driver's
  `iotlb_sync_map`, `iova_to_phys`), each checked with `KUNIT_EXPECT_EQ` against what the
  reference (upstream) model returned, and a comment where the variant goes wrong that says
  what goes wrong and what a KUnit test can and cannot observe of it.

The parts: `to_pytest`, `to_kunit`, and what both name the same way (`common`); this module is
the command, `export_file`.

The io-pgtable calls come from replaying the scenario on a reference world whose
`io_pgtable_ops` are wrapped to record them (the core's page-size split is the model's own
`iommu_pgsize`); the `iotlb_sync_map` calls are those the executor recorded in the variant.
"""

from __future__ import annotations

from ...run.executor import run_scenario
from .common import signatures
from .to_kunit import export_kunit
from .to_pytest import CLEAN_VARIANTS, export_pytest

FORMATS = ("pytest", "kunit")


class ExportError(Exception):
    """The input cannot be exported (e.g. the kernel refuses its configuration)."""


def export_file(path: str, fmt: str, variant_spec: str) -> tuple[str, list[str]]:
    """Returns (the exported text, warnings).  Raises OpsSyntaxError for an unreadable input,
    ExportError for one that cannot be exported, VariantLoadError for a bad variant."""
    from ...run.plugins import load_variant
    from ..replay import input_path, load_input

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    variant = load_variant(variant_spec)
    scenario = load_input(path)
    original = None
    try:
        raw = input_path(path).read_text(encoding="utf-8")
        if raw.lstrip().startswith("# iopgfuzz ops"):
            original = raw
    except (OSError, UnicodeDecodeError):
        pass
    res = run_scenario(scenario, variant)
    if res.config_error:
        raise ExportError(f"{path}: the kernel refuses this configuration: {res.config_error}")
    warnings = []
    if not res.findings:
        warnings.append(f"{variant_spec} reports no finding on {path}")
    if fmt == "pytest":
        for v in CLEAN_VARIANTS:
            if v != variant_spec:
                other = signatures(run_scenario(scenario, load_variant(v)))
                if other:
                    warnings.append(f"{v} reports {', '.join(other)}: the exported test fails "
                                    "until that is fixed")
        return export_pytest(scenario, res, variant_spec, path, original), warnings
    return export_kunit(scenario, res, variant, variant_spec, path), warnings

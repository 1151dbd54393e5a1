"""The CMO report (`python -m fuzz report`): workloads -> measurements -> table, JSON, PNG.

Each workload is a short, deterministic list of `.ops` operations built in code (setup ops that
are not measured, then the measured ops).  It runs once per variant, each time in a fresh
`World`, and for every variant the report counts the cache lines cleaned and the clean calls
(`dma_sync_single_for_device`) of the measured ops, in total and by call site.

The yardsticks are the `reference` variant (upstream: every PTE write cleaned at once) and the
*least possible*: for each measured op, the cache lines of page-table memory whose hardware bits
the op changed, in tables still live when it returns.  The SMMU may read any of them as soon as
the op returns, and a line only reaches memory when it is cleaned (or evicted, which nothing
guarantees), so every correct variant has to clean each of them at least once per op.  That
count comes from the CPU views of the tables before and after each op (`World.take_changed_tables`
and `World.table_view`), so it does not depend on any variant's walker or on the clean
accounting; docs/report.md explains it in full.

Correctness is reported alongside: after every measured op, and over the whole workload at the
end, `World.first_divergence` must find no entry where the SMMU reads something other than the
CPU wrote; returns and the final tables (hardware bits) must match the reference's.  A variant
that cleans less by being wrong shows `stale` (or a note), and is never counted as a saving.

The parts: `workloads` (what is run), `measure` (running it and counting, the least possible,
the correctness checks), `render` (tables, JSON, the PNG; matplotlib is imported only inside
`plot_png`, never at module level); this module is the command, `run_cli`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fuzz.lang.ops import parse_config_filter
from model import Config, ConfigRejected

from .measure import run_report
from .render import FORMATS, matplotlib_available, plot_png, report_json
from .workloads import workload_scenario

EXIT_OK, EXIT_BAD_INPUT = 0, 2
BUILTIN_VARIANTS = ("reference", "v1", "v1-review", "fixed")
DEFAULT_PNG = "out/report/cmo.png"
INSTALL_HINT = 'pip install -e ".[report]"   (or: pip install "matplotlib>=3.8,<4")'


def run_cli(variant_specs: list[str] | None, workloads: list[str] | None, config_filter: str,
            png: str | None, no_png: bool, json_path: str | None, fmt: str = "text",
            ops_dir: str | None = None) -> int:
    """`python -m fuzz report`.  Exit 0 on success; 2 on bad arguments, or when `--png PATH`
    was asked for explicitly and matplotlib is not installed (the table is printed first).
    The default PNG is skipped with a note when matplotlib is missing."""
    from fuzz.run.plugins import VariantLoadError, load_variant

    def bad(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if fmt not in FORMATS:
        return bad(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        config = Config(**parse_config_filter(config_filter or ""))
    except ValueError as e:
        return bad(str(e))
    variants = []
    for spec in variant_specs or BUILTIN_VARIANTS:
        try:
            v = load_variant(spec)
        except VariantLoadError as e:
            return bad(str(e))
        if v.name not in {x.name for x in variants}:
            variants.append(v)
    if png is not None and no_png:
        return bad("--png and --no-png contradict each other")
    try:
        rep = run_report(config, variants, workloads)
    except ConfigRejected as e:
        return bad(str(e))
    except ValueError as e:
        return bad(str(e))
    if not rep.workloads:
        return bad("no workload fits this configuration: "
                   + "; ".join(f"{n}: {why}" for n, why in rep.skipped))
    print(FORMATS[fmt](rep), end="")
    if json_path:
        from fuzz.repro.triage import atomic_write

        atomic_write(Path(json_path), json.dumps(report_json(rep), indent=1) + "\n")
        print(f"wrote {json_path}")
    if ops_dir:
        from fuzz.repro.triage import atomic_write

        for wr in rep.workloads:
            atomic_write(Path(ops_dir) / f"{wr.workload.name}.ops",
                         workload_scenario(wr.workload, config))
        print(f"wrote {len(rep.workloads)} .ops files to {ops_dir}")
    if no_png:
        return EXIT_OK
    target = Path(png or DEFAULT_PNG)
    if not matplotlib_available():
        msg = f"matplotlib is not installed, so no PNG; install the extra: {INSTALL_HINT}"
        if png is not None:
            return bad(msg)
        print(f"note: {msg}")
        return EXIT_OK
    plot_png(rep, target)
    print(f"wrote {target}")
    return EXIT_OK

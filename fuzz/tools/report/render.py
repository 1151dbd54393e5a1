"""The CMO report's output: the text, Markdown and summary tables, the JSON document and the
PNG chart.  matplotlib is imported only inside `plot_png`, never at module level."""

from __future__ import annotations

from pathlib import Path

from fuzz.lang.ops import fmt_size, format_op

from .measure import Report

SCHEMA = "iopgfuzz-cmo-report/1"

COLUMNS = ("workload", "variant", "lines", "calls", "lines/ref", "calls/ref", "lines/least",
           "calls/least", "stale", "warns", "cleans by site (calls/lines)")


def _fmt_ratio(a: int, b: int) -> str:
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}"


def _fmt_sites(by_site: dict) -> str:
    return " ".join(f"{s}:{v['calls']}/{v['lines']}" for s, v in by_site.items()
                    if v["calls"] or v["lines"]) or "-"


def table_rows(rep: Report) -> list[list[str]]:
    rows = []
    for wr in rep.workloads:
        name = wr.workload.name
        rows.append([name, "least possible", str(wr.least_lines), str(wr.least_calls),
                     "", "", "", "", "", "", ""])
        ref = wr.reference
        for r in wr.results:
            if r.error:
                rows.append([name, r.variant, "-", "-", "", "", "", "", "-", "-",
                             f"ERROR {r.error}"])
                continue
            stale = "no" if r.stale is None else \
                f"YES L{r.stale['lvl']} {r.stale['iova']:#x}"
            extra = "; ".join(r.notes)
            rows.append([name, r.variant, str(r.lines), str(r.calls),
                         _fmt_ratio(r.lines, ref.lines), _fmt_ratio(r.calls, ref.calls),
                         _fmt_ratio(r.lines, wr.least_lines),
                         _fmt_ratio(r.calls, wr.least_calls), stale, str(r.warns),
                         _fmt_sites(r.by_site) + (f"  !! {extra}" if extra else "")])
    return rows


def _header(rep: Report) -> list[str]:
    c, g = rep.config, rep.geometry
    quirks = ",".join(c.quirk_names()) or "none"
    walk = "coherent walk (nothing needs cleaning)" if c.coherent_walk else "non-coherent walk"
    return [f"CMO report: {c.fmt} {fmt_size(c.granule)} ias={c.ias} oas={c.oas} line={c.line} "
            f"quirks={quirks}, {walk}; {g['levels']} levels from L{g['start_level']}, PGD "
            f"{g['pgd_entries']} entries",
            "lines/calls: cleans of the measured ops; least possible: lines whose hardware bits "
            "an op changed, summed over ops (docs/report.md)"]


def format_text(rep: Report) -> str:
    rows = table_rows(rep)
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) if rows else len(COLUMNS[i])
              for i in range(len(COLUMNS))]
    right = {2, 3, 4, 5, 6, 7, 9}

    def line(cells):
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    out = _header(rep) + ["", line(COLUMNS)]
    prev = None
    for r in rows:
        shown = list(r)
        if r[0] == prev:
            shown[0] = ""
        elif prev is not None:
            out.append("")
        prev = r[0]
        out.append(line(shown))
    out += _footer(rep)
    return "\n".join(out) + "\n"


def format_markdown(rep: Report) -> str:
    """The full table as Markdown."""
    rows = table_rows(rep)
    out = [f"_{_header(rep)[0]}_", ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join("---:" if i in {2, 3, 4, 5, 6, 7, 9} else "---"
                              for i in range(len(COLUMNS))) + "|")
    prev = None
    for r in rows:
        shown = list(r)
        shown[0] = "" if r[0] == prev else f"`{r[0]}`"
        prev = r[0]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in shown) + " |")
    return "\n".join(out + _footer(rep, markdown=True)) + "\n"


def format_summary(rep: Report) -> str:
    """One Markdown row per workload: `lines / calls` for the least possible and each
    variant; a flagged result says why."""
    out = [f"_{_header(rep)[0]}_", "",
           "| workload | least possible | " + " | ".join(rep.variants) + " |",
           "|---|" + "---:|" * (1 + len(rep.variants))]
    for wr in rep.workloads:
        cells = [f"`{wr.workload.name}`", f"{wr.least_lines} / {wr.least_calls}"]
        for v in rep.variants:
            r = next((r for r in wr.results if r.variant == v), None)
            if r is None:
                cells.append("")
            elif r.error:
                cells.append("error")
            else:
                why = ", ".join(r.flags)
                cells.append(f"{r.lines} / {r.calls}" + (f" ({why})" if why else ""))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out + _footer(rep, markdown=True)) + "\n"


def _footer(rep: Report, markdown: bool = False) -> list[str]:
    out = [""]
    item = "- `{}`: {}" if markdown else "{}: {}"
    for wr in rep.workloads:
        out.append(item.format(wr.workload.name, wr.workload.what))
    for name, why in rep.skipped:
        out.append(item.format(name, f"skipped ({why})"))
    flagged: dict[str, list[str]] = {}
    for wr in rep.workloads:
        for r in wr.results:
            if not r.correct:
                flagged.setdefault(r.variant, []).append(wr.workload.name)
    if flagged:
        out.append("")
        out.append("Flagged (a stale entry, an error, WARNs, bad memory accesses or a difference "
                   "from the reference): their counts are no evidence of a saving.")
        for v, names in flagged.items():
            where = "every workload" if len(names) == len(rep.workloads) > 1 else \
                ", ".join(names)
            out.append(("- " if markdown else "  ") + f"{v}: {where}")
    return out


def report_json(rep: Report) -> dict:
    c = rep.config
    doc = {"schema": SCHEMA,
           "config": {"fmt": c.fmt, "granule": c.granule, "ias": c.ias, "oas": c.oas,
                      "quirks": c.quirk_names(), "line": c.line, "concat": c.concat,
                      "enoent_bug": c.enoent_bug, "coherent_walk": c.coherent_walk},
           "geometry": rep.geometry, "variants": rep.variants, "workloads": [],
           "skipped": [{"name": n, "reason": why} for n, why in rep.skipped]}
    for wr in rep.workloads:
        ref = wr.reference
        doc["workloads"].append({
            "name": wr.workload.name, "what": wr.workload.what,
            "setup": [format_op(op) for op in wr.workload.setup],
            "ops": [format_op(op) for op in wr.workload.ops],
            "least": {"lines": wr.least_lines, "calls": wr.least_calls},
            "results": {r.variant: r.as_json(ref, wr.least_lines, wr.least_calls)
                        for r in wr.results}})
    return doc


FORMATS = {"text": format_text, "markdown": format_markdown, "summary": format_summary}


COLORS = {"reference": "#7f7f7f", "v1": "#d62728", "v1-review": "#ff7f0e", "fixed": "#1f77b4"}
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def matplotlib_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def plot_png(rep: Report, path: Path) -> None:
    """Two panels (lines cleaned, clean calls), grouped bars per workload and variant, the
    least possible as a black bar across each group, stale results hatched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = [wr.workload.name for wr in rep.workloads]
    variants = rep.variants
    nv = max(1, len(variants))
    width = 0.8 / nv
    fig = Figure(figsize=(max(8.0, 0.95 * len(names) + 2.5), 8.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    colors = {v: COLORS.get(v, _EXTRA_COLORS[i % len(_EXTRA_COLORS)])
              for i, v in enumerate(variants)}
    for ax, what, least_of in ((axes[0], "lines", lambda wr: wr.least_lines),
                               (axes[1], "calls", lambda wr: wr.least_calls)):
        for j, v in enumerate(variants):
            xs, ys, hatches = [], [], []
            for i, wr in enumerate(rep.workloads):
                r = next((r for r in wr.results if r.variant == v), None)
                if r is None or r.error:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(getattr(r, what))
                hatches.append(None if r.correct else "xx")
            bars = ax.bar(xs, ys, width=width, color=colors[v])
            for b, h in zip(bars, hatches, strict=True):
                if h:
                    b.set_hatch(h)
                    b.set_edgecolor("black")
        for i, wr in enumerate(rep.workloads):
            ax.hlines(least_of(wr), i - 0.42, i + 0.42, colors="black", linewidth=2.2)
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{what} cleaned" if what == "lines" else "clean calls")
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels(names, rotation=35, ha="right")
    c = rep.config
    fig.suptitle(f"Cache maintenance per workload: {c.fmt} {fmt_size(c.granule)} ias={c.ias} "
                 f"line={c.line}" + (" (coherent)" if c.coherent_walk else " (non-coherent)"))
    handles = [Line2D([], [], color="black", linewidth=2.2)]
    labels = ["least possible"]
    for v in variants:
        handles.append(Patch(facecolor=colors[v]))
        labels.append(v)
    if any(not r.correct for wr in rep.workloads for r in wr.results):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx"))
        labels.append("flagged: stale, error, WARNs, bad access or mismatch")
    axes[0].legend(handles, labels, ncol=min(6, len(labels)), fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})

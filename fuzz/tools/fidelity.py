"""`fidelity`: the Python model against the kernel C it transliterates, op by op.

Two pairings: the model's `Reference` against the tree's C as it is (`c:upstream`), and a
model variant (v1 by default) against the C built with the patches.  Each scenario runs in
both worlds of a pairing in lockstep (`executor.run_op`, nothing judged), and after every op
the two are compared in what the kernel code decides:

* `return`  the op's return value (an SMMU walk: its descriptors and outcome);
* `tables`  every table either world allocated, freed or stored to: freed or not, its logical
            size, and its CPU view bit for bit (tables sit at the same physical addresses);
* `cleans`  calls and lines cleaned, per clean site;
* `warns`   WARN sites and how often each fired;
* `memory`  out-of-bounds, use-after-free and wild-pointer events, by kind and function;
* `crash`   BUG_ON, budget exhaustion, model errors.

And for the variant pairing, the findings of the two full differential runs.

The model is told the tree's kernel version (`cworld.profiles`), so that documented
kernel-version switches are set to match; what still differs is a difference to explain.
The model's `sync_map` failpoint has no C counterpart: from a `fail sync_map` op on, a
scenario is not compared (counted as skipped).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from model import ConfigRejected, Reference, Variant
from model.events import MEMORY_KINDS, WARN

from ..gen.generate import random_scenario
from ..lang import ops as O
from ..repro.minimize import Minimizer
from ..run.executor import DEFAULT_BUDGET, run_op, run_scenario
from ..run.worlds import make_world

ASPECTS = ("config", "return", "tables", "cleans", "warns", "memory", "crash", "findings")


@dataclass
class Difference:
    pairing: str          # "reference" or "variant"
    aspect: str
    op_index: int
    op: str
    model: str
    c: str
    source: str = ""
    scenario: O.Scenario | None = None
    minimized: O.Scenario | None = None

    @property
    def key(self) -> str:
        """What must stay the same while the reproducer is minimised."""
        return f"{self.pairing}:{self.aspect}:{self.op.split(' ')[0]}"

    def describe(self) -> str:
        return (f"[{self.pairing}] {self.aspect} after op {self.op_index} `{self.op}`:\n"
                f"    model: {self.model}\n    C:     {self.c}")


@dataclass
class Pairing:
    name: str
    model: Variant
    c: Variant


@dataclass
class FidelityReport:
    scenarios: int = 0
    compared_ops: int = 0
    skipped: Counter = field(default_factory=Counter)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


# --- comparing two worlds op by op --------------------------------------------------------

def _ret(ret) -> str:
    if hasattr(ret, "describe"):
        return ret.describe().split(": ", 1)[-1]
    return repr(ret)


def _warns(o) -> dict:
    c: Counter = Counter()
    for e in o.events:
        if e.kind == WARN:
            c[e.site] += e.count
    return dict(sorted(c.items()))


def _memory(o) -> list:
    return sorted({(e.kind, e.site) for e in o.events if e.kind in MEMORY_KINDS})


def _crash(o) -> str:
    return ("crashed" if o.crashed else "") + ("exhausted" if o.exhausted else "") + \
        ("model-error" if o.error else "")


def _tables(wm, wc, pas) -> str | None:
    """The first table that differs, described, or None."""
    for pa in sorted(pas):
        a, b = wm.table_view(pa), wc.table_view(pa)
        if a is None or b is None:
            if a is not None or b is not None:
                return f"table {pa:#x} exists in the {'model' if a is not None else 'C'} only"
            continue
        if a[0] != b[0]:
            return f"table {pa:#x} freed in the {'model' if a[0] else 'C'} only"
        if a[0]:
            continue             # both freed: the poison is the model's, not the kernel's
        if len(a[1]) != len(b[1]):
            return f"table {pa:#x}: {len(a[1])} entries in the model, {len(b[1])} in the C"
        diff = (a[1] != b[1]).nonzero()[0]
        if len(diff):
            i = int(diff[0])
            return (f"table {pa:#x} entry {i}: model {int(a[1][i]):#x}, C {int(b[1][i]):#x}"
                    f" ({len(diff)} entries differ)")
    return None


def compare_scenario(sc: O.Scenario, pairing: Pairing, source: str = "",
                     budget: int | None = DEFAULT_BUDGET,
                     report: FidelityReport | None = None) -> list[Difference]:
    """Run `sc` on both worlds of `pairing`; the differences, first one per aspect."""
    report = report or FidelityReport()
    out: list[Difference] = []

    def diff(aspect, i, op, m, c):
        if all(d.aspect != aspect for d in out):
            out.append(Difference(pairing.name, aspect, i, op, m, c, source, sc))

    try:
        wc = make_world(pairing.c, sc.config, budget)
        c_err = None
    except ConfigRejected as e:
        wc, c_err = None, e.reason
    config = model_config_for(sc.config, pairing.c)
    try:
        wm = make_world(pairing.model, config, budget)
        m_err = None
    except ConfigRejected as e:
        wm, m_err = None, e.reason
    if (wc is None) != (wm is None):
        diff("config", -1, "config", m_err or "accepted", c_err or "accepted")
        return out
    if wc is None:
        report.skipped["configs both refuse (compared: they agree)"] += 1
        return out
    wm.take_changed_tables(), wc.take_changed_tables()
    for i, op in enumerate(sc.ops):
        if isinstance(op, O.Fail) and op.site == "sync_map":
            report.skipped["fail sync_map (no C counterpart)"] += 1
            break
        om, oc = run_op(wm, op), run_op(wc, op)
        report.compared_ops += 1
        text = O.format_op(op)
        if _crash(om) or _crash(oc):
            if _crash(om) != _crash(oc) or om.exhausted:
                if not (om.exhausted or oc.exhausted):
                    diff("crash", i, text, om.crashed or om.error or "-",
                         oc.crashed or oc.error or "-")
                else:
                    report.skipped["work budget ran out"] += 1
            break
        if _ret(om.ret) != _ret(oc.ret):
            diff("return", i, text, _ret(om.ret), _ret(oc.ret))
        if om.cleans != oc.cleans:
            diff("cleans", i, text, str(om.cleans), str(oc.cleans))
        if _warns(om) != _warns(oc):
            diff("warns", i, text, str(_warns(om)), str(_warns(oc)))
        if _memory(om) != _memory(oc):
            diff("memory", i, text, str(_memory(om)), str(_memory(oc)))
        t = _tables(wm, wc, wm.take_changed_tables() | wc.take_changed_tables())
        if t is not None:
            diff("tables", i, text, t, t)
        if out:
            break                # later ops compare worlds that already differ
    return out


def compare_findings(sc: O.Scenario, pairing: Pairing, reference_c: Variant,
                     source: str = "", report: FidelityReport | None = None) -> list[Difference]:
    """The findings of the full differential runs: model variant against model reference,
    C variant against C reference, by signature with the variant name left out."""
    def sigs(res):
        return sorted({(f.kind, f.where, f.level, f.config_class) for f in res.findings})
    if any(isinstance(op, O.Fail) and op.site == "sync_map" for op in sc.ops):
        return []                # the C worlds skip it: findings differ by construction
    config = model_config_for(sc.config, pairing.c)
    rm = run_scenario(replace(sc, config=config), pairing.model, reference=Reference())
    rc = run_scenario(sc, pairing.c, reference=reference_c)
    if rm.exhausted or rc.exhausted:
        # the worlds' work budgets are counted differently: a run cut short judges less
        if report is not None:
            report.skipped["work budget ran out (findings)"] += 1
        return []
    m, c = sigs(rm), sigs(rc)
    if m == c:
        return []
    first = min((f for f in set(m) ^ set(c)), default=None)
    return [Difference(pairing.name, "findings", -1, "findings",
                       "; ".join("|".join(x) for x in m if x not in c) or "-",
                       "; ".join("|".join(x) for x in c if x not in m) or "-",
                       source, sc, None)] if first else []


def model_config_for(config, c_variant):
    """The scenario's config with the model's kernel-version switches set to the C's tree."""
    from cworld.profiles import model_config_for_tree
    return model_config_for_tree(config, c_variant.kernel_version)


# --- minimising a difference ----------------------------------------------------------------

class DifferenceMinimizer(Minimizer):
    """`minimize`'s shrinking, keeping one fidelity difference (by its key) instead of a
    finding signature."""

    def __init__(self, pairing: Pairing, key: str, max_replays: int, reference_c: Variant):
        super().__init__(pairing.model, key, max_replays)
        self.pairing, self.reference_c = pairing, reference_c

    def holds(self, sc: O.Scenario) -> bool:
        if self.signature.split(":")[1] == "findings":
            diffs = compare_findings(sc, self.pairing, self.reference_c)
        else:
            diffs = compare_scenario(sc, self.pairing)
        return any(d.key == self.signature for d in diffs)


def minimize_difference(d: Difference, pairing: Pairing, reference_c: Variant,
                        max_replays: int = 400) -> O.Scenario:
    m = DifferenceMinimizer(pairing, d.key, max_replays, reference_c)
    best, _ = m.minimize(d.scenario)
    return best


# --- the whole check ----------------------------------------------------------------------------

def scenario_files(root: Path) -> list[Path]:
    return sorted([*(root / "corpus").glob("*/*.ops"), *(root / "crashes").glob("*/*.ops")])


def random_scenarios(n: int, seed: int) -> list[tuple[str, O.Scenario]]:
    """The generator's scenarios without `fail sync_map` ops, which a C world cannot honour
    (kept, they would end the comparison of 4 scenarios in 10 at that op)."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        sc = random_scenario(r)
        ops = tuple(op for op in sc.ops if not (isinstance(op, O.Fail) and op.site == "sync_map"))
        out.append((f"random #{i} (seed {seed})", replace(sc, ops=ops)))
    return out


def run_fidelity(pairings: list[Pairing], reference_c: Variant, files: list[Path],
                 n_random: int, seed: int = 0, minimize: bool = True,
                 progress=None) -> FidelityReport:
    report = FidelityReport()
    scenarios = [(str(p), O.parse_scenario(p.read_text(), str(p))) for p in files]
    scenarios += random_scenarios(n_random, seed)
    seen: dict[str, Difference] = {}
    for k, (source, sc) in enumerate(scenarios):
        report.scenarios += 1
        for pairing in pairings:
            diffs = compare_scenario(sc, pairing, source, report=report)
            if not diffs and pairing.name == "variant":
                diffs = compare_findings(sc, pairing, reference_c, source, report)
            for d in diffs:
                if d.key in seen:
                    continue             # one reproducer per kind of difference
                seen[d.key] = d
                if minimize:
                    d.minimized = minimize_difference(d, pairing, reference_c)
                report.differences.append(d)
        if progress and (k + 1) % 100 == 0:
            progress(k + 1, len(scenarios), len(report.differences))
    return report


def format_report(report: FidelityReport) -> str:
    lines = [f"fidelity: {report.scenarios} scenarios, {report.compared_ops} ops compared, "
             f"{len(report.differences)} unexplained difference(s)"]
    for why, n in sorted(report.skipped.items()):
        lines.append(f"  skipped {n}: {why}")
    for d in report.differences:
        lines.append("")
        lines.append(d.describe())
        lines.append(f"    first seen in {d.source}")
        if d.minimized is not None:
            lines.append("    minimised reproducer:")
            lines += ["      " + ln for ln in O.format_scenario(d.minimized).splitlines()]
    return "\n".join(lines) + "\n"

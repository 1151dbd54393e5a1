"""Imports point one way: model <- cworld <- fuzz, down fuzz/'s pipeline, and no cycle anywhere.

The graph is read from the source (every `import`, at module level or inside a function: a
late import hides a cycle from Python, not from a reader).  The kernel model is the bottom and
imports nothing of ours above it; the C world builds on the model's world API only; fuzz/ is
split into subpackages in data-flow order, each with a rank (`RANKS`, docs/architecture.md),
and a module may import only modules of an equal or lower rank.  Within fuzz.judge, the records
of a run, the finding vocabulary and the intervals sit below the oracles, and the op language
below everything (issue "A layout that shows the pipeline").
"""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "cworld", "fuzz")

#: fuzz/ modules that the executor and oracles build on: they must not import either
FUZZ_BELOW_EXECUTION = ("fuzz.judge.records", "fuzz.lang.ops", "fuzz.judge.findings",
                        "fuzz.judge.intervals", "fuzz.lang.codec")

#: The layers, bottom first.  A module's rank is that of the longest name here that is it or a
#: package containing it; every module must have one (a new subpackage or top-level module of
#: fuzz/ is placed here on purpose).  `fuzz` itself (its __init__) imports nothing.
RANKS = {
    "model": 0,             # the kernel, modelled
    "cworld": 1,            # the kernel's own C, behind the model's world interface
    "fuzz": 2,              # (the package's __init__ only)
    "fuzz.lang": 2,         # the op language: ops, codec
    "fuzz.gen": 3,          # generation: generate, mutate, strategies
    "fuzz.judge": 4,        # findings, records, intervals, oracles
    "fuzz.run": 5,          # executor, plugins
    "fuzz.repro": 6,        # triage, replay, minimize, export
    "fuzz.campaigns": 7,    # campaign, cflite, hypo_campaign
    "fuzz.target": 7,       # the Atheris target script (its path is public: run_fuzz.sh, ...)
    "fuzz.tools": 8,        # bench, report, fidelity, coverage_report
    "fuzz.cli": 9,          # `python -m fuzz ...`
    "fuzz.__main__": 9,
}


def rank_of(name: str, ranks: dict[str, int] = RANKS) -> int | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in ranks:
            return ranks[".".join(parts[:n])]
    return None


def upward_imports(graph: dict[str, set[str]], ranks: dict[str, int] = RANKS) -> dict[str, list]:
    """{module: [imported modules of a higher rank]} for every module that has any."""
    bad = {m: sorted(d for d in deps if rank_of(d, ranks) > rank_of(m, ranks))
           for m, deps in graph.items()}
    return {m: d for m, d in bad.items() if d}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules `name` imports (a `from pkg import mod` counts as pkg.mod)."""
    out = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in MODULES and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


GRAPH = {m: imports_of(m, p) for m, p in MODULES.items()}


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read():
    # a few edges known from the source, so that an empty graph cannot pass the tests below
    assert "fuzz.judge.oracles" in GRAPH["fuzz.run.executor"]
    assert "fuzz.judge.records" in GRAPH["fuzz.judge.oracles"]
    assert "model.world" in GRAPH["cworld.world"] or "model" in GRAPH["cworld.world"]


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_the_model_imports_only_the_model():
    bad = {m: sorted(d for d in deps if not d.startswith("model"))
           for m, deps in GRAPH.items() if m.startswith("model")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_c_world_does_not_import_the_fuzzer():
    bad = {m: sorted(d for d in deps if d.startswith("fuzz"))
           for m, deps in GRAPH.items() if m.startswith("cworld")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_what_execution_builds_on_does_not_import_execution():
    above = {"fuzz.run.executor", "fuzz.judge.oracles", "fuzz.repro.triage",
             "fuzz.campaigns.campaign", "fuzz.cli"}
    bad = {m: sorted(GRAPH[m] & above) for m in FUZZ_BELOW_EXECUTION}
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_rank_check_finds_an_upward_import():
    ranks = {"low": 0, "high": 1, "high.sub": 1}
    graph = {"low": {"high.sub"}, "high.sub": {"low"}}
    assert upward_imports(graph, ranks) == {"low": ["high.sub"]}
    assert upward_imports({"high": {"high.sub", "low"}}, ranks) == {}


def test_every_module_has_a_rank():
    assert sorted(m for m in MODULES if rank_of(m) is None) == []


def test_imports_point_only_to_an_equal_or_lower_rank():
    assert upward_imports(GRAPH) == {}


def test_every_fuzz_subpackage_says_its_job_and_what_it_may_import():
    for name, path in MODULES.items():
        if name.count(".") == 1 and name.startswith("fuzz.") and path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "imports" in doc and f"Rank {rank_of(name) - RANKS['fuzz.lang']} " in doc, name


def test_every_relative_import_names_a_module_of_ours():
    # a relative import one level off names nothing; the graph above would silently miss it
    bad = []
    for name, path in MODULES.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if target not in MODULES:
                    bad.append(f"{name}:{node.lineno}: {target}")
    assert bad == []


def test_every_package_is_installed():
    # `pip install .` (the ClusterFuzzLite build) installs only the packages pyproject names
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert packages == set(listed["packages"])

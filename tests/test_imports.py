"""Imports point one way: model <- cworld <- fuzz, and no cycle anywhere.

The graph is read from the source (every `import`, at module level or inside a function: a
late import hides a cycle from Python, not from a reader).  The kernel model is the bottom and
imports nothing of ours above it; the C world builds on the model's world API only; within
fuzz/, the records of a run, the op language and the finding vocabulary sit below the executor
and the oracles, which sit below triage, the tools and the CLI (issue "A layout that shows the
pipeline"; the full split of fuzz/ into stages is still to come).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "cworld", "fuzz")

#: fuzz/ modules that the executor and oracles build on: they must not import either
FUZZ_BELOW_EXECUTION = ("fuzz.records", "fuzz.ops", "fuzz.findings", "fuzz.intervals",
                        "fuzz.codec")


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
    assert "fuzz.oracles" in GRAPH["fuzz.executor"]
    assert "fuzz.records" in GRAPH["fuzz.oracles"]
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
    above = {"fuzz.executor", "fuzz.oracles", "fuzz.triage", "fuzz.campaign", "fuzz.cli"}
    bad = {m: sorted(GRAPH[m] & above) for m in FUZZ_BELOW_EXECUTION}
    assert {m: d for m, d in bad.items() if d} == {}

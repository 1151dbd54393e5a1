"""Variant plugins (design §3, docs/variants.md): loading by name, by file and by module; the
shapes a plugin may take; an error for every way loading can fail; and the plugin API being
enough in both directions -- the naive example passes every correctness oracle, a deliberately
broken plugin written against the same API is caught."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from fuzz import cli
from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import VariantLoadError, load_variant
from model import World
from model.kapi import io_pgtable_ops_to_data, sync_map_failpoint
from model.variants import BUILTIN, V1, Fixed, Reference, V1Review, Variant

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAIVE_FILE = EXAMPLES / "naive_leaf_walker.py"
NAIVE_SPEC = f"{NAIVE_FILE}:NaiveLeafWalker"


def _plugin(tmp_path: Path, stem: str, body: str) -> Path:
    path = tmp_path / f"{stem}.py"
    path.write_text(textwrap.dedent(body))
    return path


def _load_error(spec: str) -> str:
    with pytest.raises(VariantLoadError) as exc:
        load_variant(spec)
    return str(exc.value)


# --- loading ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("reference", Reference), ("v1", V1),
                                      ("v1-review", V1Review), ("fixed", Fixed)])
def test_builtin_by_name(name, cls):
    v = load_variant(name)
    assert type(v) is cls
    assert v.name == name
    assert set(BUILTIN) == {"reference", "v1", "v1-review", "fixed"}


def test_builtins_are_fresh_instances():
    assert load_variant("fixed") is not load_variant("fixed")


def test_naive_example_by_path():
    v = load_variant(NAIVE_SPEC)
    assert isinstance(v, Variant)
    assert type(v).__name__ == "NaiveLeafWalker"
    assert v.name == "naive"
    assert v.defer_sync_pte is True


def test_naive_example_by_relative_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    v = load_variant("examples/naive_leaf_walker.py:NaiveLeafWalker")
    assert v.name == "naive"


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    sys.modules.pop("naive_leaf_walker", None)


def test_naive_example_by_module(examples_on_path):
    v = load_variant("naive_leaf_walker:NaiveLeafWalker")
    assert type(v).__name__ == "NaiveLeafWalker"
    assert v.name == "naive"


def test_naive_example_hooks_follow_the_patch_shape():
    """`.iotlb_sync_map = cfg->coherent_walk ? NULL : ...` and a driver hook that forwards."""
    v = load_variant(NAIVE_SPEC)
    w = World(parse_scenario("# iopgfuzz ops v1\n").config, v)
    assert w.has_pt_sync_map
    coherent = parse_scenario("# iopgfuzz ops v1\nconfig coherent=1\n").config
    assert not World(coherent, v).has_pt_sync_map


PLUGIN_SHAPES = """
    from model.variants.base import Variant
    from model.variants.fixed import Fixed


    class AsClass(Fixed):
        name = "as-class"


    class Unnamed(Fixed):
        name = "base"                  # what the base class says: the loader names it


    INSTANCE = AsClass()


    def make_fixed():
        v = Fixed()
        v.name = "from-factory"
        return v
"""


def test_plugin_class_instance_and_factory(tmp_path):
    path = _plugin(tmp_path, "shapes_plugin", PLUGIN_SHAPES)
    as_class = load_variant(f"{path}:AsClass")
    assert type(as_class).__name__ == "AsClass" and as_class.name == "as-class"
    instance = load_variant(f"{path}:INSTANCE")
    assert type(instance).__name__ == "AsClass" and instance.name == "as-class"
    factory = load_variant(f"{path}:make_fixed")
    assert isinstance(factory, Fixed) and factory.name == "from-factory"
    unnamed = load_variant(f"{path}:Unnamed")
    assert unnamed.name == "Unnamed"
    for v in (as_class, instance, factory, unnamed):
        assert isinstance(v, Variant)


# --- loading errors ------------------------------------------------------------------------------

def test_error_unknown_builtin_name():
    msg = _load_error("v2")
    assert "'v2'" in msg
    for name in BUILTIN:                      # says what exists
        assert name in msg
    assert "file.py:Name" in msg and "module:Name" in msg   # and how to name a plugin


def test_error_missing_file(tmp_path):
    missing = tmp_path / "nowhere.py"
    msg = _load_error(f"{missing}:Name")
    assert str(missing) in msg
    assert "no file" in msg


def test_error_missing_attribute_lists_variants():
    msg = _load_error(f"{NAIVE_FILE}:NaiveWalker")
    assert "NaiveWalker" in msg
    assert "NaiveLeafWalker" in msg           # the variants that file does have


def test_error_missing_attribute_in_module(examples_on_path):
    msg = _load_error("naive_leaf_walker:Nope")
    assert "Nope" in msg and "NaiveLeafWalker" in msg


def test_error_name_not_an_identifier():
    msg = _load_error(f"{NAIVE_FILE}:not-a-name")
    assert "not-a-name" in msg


NOT_VARIANTS = """
    NUMBER = 42


    class Plain:
        pass


    def returns_none():
        return None
"""


@pytest.mark.parametrize("name,typename", [("NUMBER", "int"), ("Plain", "Plain"),
                                           ("returns_none", "NoneType")])
def test_error_not_a_variant(tmp_path, name, typename):
    path = _plugin(tmp_path, "not_variants", NOT_VARIANTS)
    msg = _load_error(f"{path}:{name}")
    assert name in msg
    assert typename in msg
    assert "Variant" in msg and "subclass" in msg


def test_error_constructor_raising(tmp_path):
    path = _plugin(tmp_path, "ctor_plugin", """
        from model.variants.base import Variant


        class Broken(Variant):
            def __init__(self):
                raise RuntimeError("no SMMU in this machine")
    """)
    msg = _load_error(f"{path}:Broken")
    assert "Broken" in msg
    assert "RuntimeError" in msg and "no SMMU in this machine" in msg


SYNTAX_ERROR = """\
from model.variants.base import Variant


class Bad(Variant:
    pass
"""


def test_error_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "syntax_plugin.py"
    path.write_text(SYNTAX_ERROR)
    msg = _load_error(f"{path}:Bad")
    assert str(path) in msg
    assert "SyntaxError" in msg
    assert "line 4" in msg


def test_error_syntax_error_names_no_other_line(tmp_path):
    """Regression: the message used to say 'failed at line 241' (a line inside importlib)."""
    path = tmp_path / "syntax_plugin2.py"
    path.write_text(SYNTAX_ERROR)
    msg = _load_error(f"{path}:Bad")
    assert set(re.findall(r"line (\d+)", msg)) == {"4"}, msg


def test_error_exception_at_import_names_the_line(tmp_path):
    path = _plugin(tmp_path, "raising_plugin", """\
        from model.variants.base import Variant

        LIMIT = 3
        raise ImportError("needs the arm64 headers")
    """)
    msg = _load_error(f"{path}:X")
    assert str(path) in msg
    assert "line 4" in msg
    assert "ImportError" in msg and "needs the arm64 headers" in msg


def test_error_exception_in_helper_at_import_names_the_plugin_line(tmp_path):
    """Regression: the message used to give the innermost frame's line, in another file
    (dataclasses.py), instead of the plugin's own line."""
    path = _plugin(tmp_path, "helper_plugin", """\
        from model import Config

        CONFIG = Config().with_(colour="blue")
    """)
    msg = _load_error(f"{path}:X")
    assert "TypeError" in msg
    assert set(re.findall(r"line (\d+)", msg)) == {"3"}, msg


def test_error_module_import_failure():
    msg = _load_error("no_such_pkg_iopgfuzz.walkers:Walker")
    assert "no_such_pkg_iopgfuzz.walkers" in msg
    assert "ModuleNotFoundError" in msg


def test_error_module_raising_at_import(tmp_path, monkeypatch):
    _plugin(tmp_path, "iopgfuzz_raising_mod", """\
        raise RuntimeError("half-written plugin")
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    msg = _load_error("iopgfuzz_raising_mod:Walker")
    assert "iopgfuzz_raising_mod" in msg
    assert "RuntimeError" in msg and "half-written plugin" in msg


def test_failed_file_import_leaves_no_half_module(tmp_path):
    path = _plugin(tmp_path, "half_plugin", """\
        from model.variants.base import Variant
        raise RuntimeError("stop")
    """)
    before = set(sys.modules)
    _load_error(f"{path}:X")
    assert set(sys.modules) - before == set()


# --- the command line --------------------------------------------------------------------------

DEMO = """\
# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 line=64
map 0x40000000 0x80001000 64K          # 16 small pages: paddr skewed, no block
smmu 0x4000f000
map 0x40200000 0x80200000 2M           # one block
map_sg 0x40400000 0x90000000+8K p2p:0xa0000000+4K 0x90003000+4K
smmu 0x40403000
unmap 0x40000000 64K
"""


def test_cli_unknown_variant_exits_2(tmp_path, capsys):
    path = tmp_path / "demo.ops"
    path.write_text(DEMO)
    assert cli.main(["replay", str(path), "--variant", "nonexistent"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("error: ")
    assert "nonexistent" in out.err


def test_cli_bad_plugin_file_exits_2(tmp_path, capsys):
    ops = tmp_path / "demo.ops"
    ops.write_text(DEMO)
    plugin = tmp_path / "syntax_plugin3.py"
    plugin.write_text(SYNTAX_ERROR)
    assert cli.main(["replay", str(ops), "--variant", f"{plugin}:Bad"]) == 2
    assert "SyntaxError" in capsys.readouterr().err


def test_cli_replays_the_naive_example(tmp_path, capsys):
    path = tmp_path / "demo.ops"
    path.write_text(DEMO)
    assert cli.main(["replay", str(path), "--variant", NAIVE_SPEC]) == 0   # efficiency notes
    out = capsys.readouterr().out                                          # do not count
    assert "variant naive against reference" in out
    assert "0 finding(s)" in out


# --- the API suffices: the naive example is correct, a broken plugin is caught ------------------

def _scenario(config: str, base: int, g: int, blk: int) -> str:
    """Map / map_sg / sync / failure / unmap in five regions `blk` apart from `base` (`g` the
    granule, `blk` the level-2 block size), reading back through the SMMU after each."""
    r = [base + i * blk for i in range(5)]
    return f"""\
# iopgfuzz ops v1
config {config}
map {r[0]:#x} {0x40000000 + g:#x} {16 * g:#x}
smmu {r[0] + 15 * g:#x}
map {r[1]:#x} 0x80000000 {blk:#x}
smmu {r[1] + blk - g:#x}
map_sg {r[2]:#x} 0x90000000+{2 * g:#x} p2p:0xa0000000+{g:#x} {0x90000000 + 3 * g:#x}+{g:#x}
smmu {r[2] + g:#x}
map_nosync {r[3]:#x} 0x60000000 {3 * g:#x}
sync {r[3]:#x} {3 * g:#x}
smmu {r[3] + 2 * g:#x}
evict all
fail sync_map nth=2
map {r[4]:#x} {0x40000000 + g:#x} {4 * g:#x}
smmu {r[4]:#x}
unmap {r[0]:#x} {16 * g:#x}
map {r[0]:#x} 0x70000000 {2 * g:#x}
smmu {r[0] + g:#x}
"""


FAILING_MAP = 11            # the op index of the map whose sync walk fails
K4, K16, K64 = 1 << 12, 1 << 14, 1 << 16
CONFIGS = [
    ("fmt=arm64-s1 granule=4K ias=48 oas=48", 0x40000000, K4, 1 << 21),
    ("fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=ttbr1", 0xffff000040000000, K4, 1 << 21),
    ("fmt=arm64-s1 granule=4K ias=32 oas=40 line=32", 0x40000000, K4, 1 << 21),  # small PGD
    ("fmt=arm64-s2 granule=4K ias=40 oas=40 line=128", 0x7fc0000000, K4, 1 << 21),  # concat
    ("fmt=arm64-s1 granule=16K ias=36 oas=40", 0x40000000, K16, 1 << 25),
    ("fmt=arm64-s1 granule=64K ias=48 oas=48", 0x40000000, K64, 1 << 29),
    ("fmt=mali granule=4K ias=48 oas=40", 0x40000000, K4, 1 << 21),
    ("fmt=arm32-s1 granule=4K ias=32 oas=32", 0x40000000, K4, 1 << 21),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_naive_example_has_no_correctness_finding(config):
    sc = parse_scenario(_scenario(*config), "naive.ops")
    res = run_scenario(sc, load_variant(NAIVE_SPEC))
    assert res.config_error is None
    assert not [f for f in res.findings if not f.efficiency], res.findings
    # the injected failure reached the caller (and the core unmapped): map returned -EIO
    failed_map = res.records[FAILING_MAP]
    assert failed_map.var.ret == -5
    assert [r.var.ret for r in res.records if r.op.kind in ("map", "sync")] == [0, 0, 0, -5, 0]


def test_naive_example_cleans_one_call_per_leaf_under_sync_map():
    """docs/variants.md: each `arm_lpae_sync_pte` is one clean, counted under `sync_map`."""
    sc = parse_scenario("# iopgfuzz ops v1\n"
                        "map 0x40000000 0x80001000 64K\n"        # 16 4K leaves, one L3 table
                        "map 0x40200000 0x80200000 2M\n",         # 1 block
                        "count.ops")
    res = run_scenario(sc, load_variant(NAIVE_SPEC))
    first, second = res.records
    assert first.var.cleans["sync_map"] == [16, 16]    # 16 calls, one line each
    assert "leaf" not in first.var.cleans              # defer_sync_pte: map_pages cleans none
    assert second.var.cleans["sync_map"] == [1, 1]
    assert first.ref.cleans.get("sync_map") is None    # the reference has no sync op
    assert res.var.stats()["by_site"]["sync_map"] == {"calls": 17, "lines": 17}


class LazyWalker(Variant):
    """Broken on purpose: defers the leaf cleans and then never performs them."""

    name = "lazy"
    defer_sync_pte = True

    def io_pgtable_iotlb_sync_map(self, data):
        def lazy_iotlb_sync_map(ops, iova, size):
            return sync_map_failpoint(io_pgtable_ops_to_data(ops))   # the rule, then nothing
        return lazy_iotlb_sync_map

    def driver_iotlb_sync_map(self, pgtbl_ops):
        def arm_smmu_iotlb_sync_map(domain, iova, size):
            return pgtbl_ops.iotlb_sync_map(pgtbl_ops, iova, size)
        return arm_smmu_iotlb_sync_map


class SwallowingWalker(Variant):
    """Broken on purpose: the naive walker, but the driver drops the op's error (PATCH 2/2)."""

    name = "swallowing"
    defer_sync_pte = True

    def __init__(self):
        self.naive = load_variant(NAIVE_SPEC)

    def io_pgtable_iotlb_sync_map(self, data):
        return self.naive.io_pgtable_iotlb_sync_map(data)

    def driver_iotlb_sync_map(self, pgtbl_ops):
        def arm_smmu_iotlb_sync_map(domain, iova, size):
            pgtbl_ops.iotlb_sync_map(pgtbl_ops, iova, size)
            return 0
        return arm_smmu_iotlb_sync_map


def test_broken_plugin_that_cleans_nothing_gives_stale_read():
    sc = parse_scenario(_scenario(*CONFIGS[0]), "lazy.ops")
    res = run_scenario(sc, LazyWalker())
    kinds = {f.kind for f in res.findings}
    assert "stale-read" in kinds
    first = next(f for f in res.findings if f.kind == "stale-read")
    assert first.op_index == 0                  # the very first successful map
    assert first.signature.startswith("stale-read|lazy|")


def test_broken_plugin_loaded_from_a_file_gives_stale_read(tmp_path):
    path = _plugin(tmp_path, "lazy_plugin", """\
        from model.kapi import io_pgtable_ops_to_data, sync_map_failpoint
        from model.variants.base import Variant


        def lazy_iotlb_sync_map(ops, iova, size):
            return sync_map_failpoint(io_pgtable_ops_to_data(ops))


        class Lazy(Variant):
            defer_sync_pte = True

            def io_pgtable_iotlb_sync_map(self, data):
                return lazy_iotlb_sync_map

            def driver_iotlb_sync_map(self, pgtbl_ops):
                return lambda domain, iova, size: pgtbl_ops.iotlb_sync_map(pgtbl_ops, iova, size)
    """)
    v = load_variant(f"{path}:Lazy")
    assert v.name == "Lazy"
    res = run_scenario(parse_scenario(_scenario(*CONFIGS[0])), v)
    assert any(f.kind == "stale-read" for f in res.findings)


def test_broken_plugin_that_drops_the_error_gives_lost_error():
    sc = parse_scenario(_scenario(*CONFIGS[0]), "swallow.ops")
    res = run_scenario(sc, SwallowingWalker())
    lost = [f for f in res.findings if f.kind == "lost-error"]
    assert lost and lost[0].op_index == FAILING_MAP
    assert lost[0].where == "driver"

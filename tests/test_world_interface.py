"""The executor and the oracles use nothing of a world but `model.interface.WorldInterface`.

Checked by running them on worlds that hide everything else: every corpus/ and crashes/ input
through a model pairing and a C pairing, each world wrapped in a proxy that raises on any name
outside the interface, must give exactly the findings and records of the unwrapped run.  A new
reach into a world's insides (`world.data...`, the event log's internals) fails here, naming
the attribute.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from fuzz.repro.replay import load_input
from fuzz.run import executor
from fuzz.run.plugins import load_variant
from model import World
from model.interface import INTERFACE, WorldInterface

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"
INPUTS = sorted((ROOT / "corpus").rglob("*.ops")) + sorted((ROOT / "crashes").rglob("*.ops"))


class OutsideInterface(AssertionError):
    pass


class InterfaceOnly:
    """A world seen through the interface alone."""

    def __init__(self, world):
        object.__setattr__(self, "_world", world)

    def __getattr__(self, name):
        if name not in INTERFACE:
            raise OutsideInterface(f"{name!r} is not part of model.interface.WorldInterface")
        return getattr(object.__getattribute__(self, "_world"), name)

    def __setattr__(self, name, value):
        raise OutsideInterface(f"setting {name!r} on a world")


def _wrapping(make_world):
    def make(*args, **kwargs):
        return InterfaceOnly(make_world(*args, **kwargs))
    return make


def _summary(res) -> str:
    """Everything a run recorded that the tools read, as text."""
    return json.dumps({
        "config_error": res.config_error, "exhausted": res.exhausted,
        "findings": [(f.signature, f.op_index, f.message) for f in res.findings],
        "records": [(r.index, r.ref.as_json(), r.var.as_json(),
                     [(c.iova, c.size, c.ret, len(c.accesses), len(c.cleans))
                      for c in r.var.sync_calls]) for r in res.records],
    }, default=str, sort_keys=True)


def test_both_worlds_implement_the_whole_interface():
    from cworld.world import CWorld
    for cls in (World, CWorld):
        assert issubclass(cls, WorldInterface)
        assert not getattr(cls, "__abstractmethods__", None), cls
        missing = [n for n in INTERFACE if not hasattr(cls, n) and
                   n not in ("config", "variant", "crashed", "events")]
        assert not missing, (cls, missing)
    # every abstract method is in the list the proxy lets through, and the other way round
    abstract = {n for n, v in vars(WorldInterface).items()
                if getattr(v, "__isabstractmethod__", False)}
    assert abstract <= INTERFACE
    assert INTERFACE - abstract == {"config", "variant", "crashed", "events"}


def test_the_proxy_refuses_what_is_outside():
    w = InterfaceOnly(World(load_input(INPUTS[0]).config))
    with pytest.raises(OutsideInterface, match="'data'"):
        w.data  # noqa: B018
    assert w.geometry.levels >= 1


@pytest.mark.parametrize("variant,reference", [
    ("v1", None), ("fixed", None), (f"c:{SEED}", "c"),
], ids=["model-v1", "model-fixed", "c-v1"])
def test_executor_and_oracles_need_only_the_interface(variant, reference, monkeypatch,
                                                       real_tree):
    v = load_variant(variant)
    ref = load_variant("c:upstream") if reference == "c" else None
    plain = [_summary(executor.run_scenario(load_input(p), v, reference=ref)) for p in INPUTS]
    monkeypatch.setattr(executor, "make_world", _wrapping(executor.make_world))
    hidden = [_summary(executor.run_scenario(load_input(p), v, reference=ref)) for p in INPUTS]
    for p, a, b in zip(INPUTS, plain, hidden, strict=True):
        assert a == b, p


def test_the_executor_and_oracles_name_no_concrete_world():
    import fuzz.judge.oracles as oracles
    for mod in (executor, oracles):
        src = inspect.getsource(mod)
        assert ".data." not in src and ".data\n" not in src, mod.__name__
        assert "from model import World" not in src and "CWorld" not in src, mod.__name__

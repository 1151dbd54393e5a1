"""What the Atheris target instruments: the code under test (the model, its variants, a plugin
variant loaded from a file) and the oracles; never NumPy, never the harness."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import inspect, json, runpy, sys
sys.argv = ["target", "-runs=0"]
g = runpy.run_path("fuzz/target.py", run_name="probe")      # imports, instruments, no fuzzing

def instrumented(fn):
    return "__ATHERIS_INSTRUMENTED__" in fn.__code__.co_consts

import fuzz.lang.codec, fuzz.run.executor, fuzz.judge.oracles
import model.io_pgtable_arm, model.cint, numpy.lib.npyio
import model.variants.v1, model.memory
plugin = sys.modules[type(g["VARIANT"]).__module__]
print(json.dumps({
    "io_pgtable_arm": instrumented(model.io_pgtable_arm.__arm_lpae_map),
    "memory": instrumented(model.memory.Memory.load),
    "v1": instrumented(model.variants.v1.__arm_lpae_iotlb_sync_map),
    "oracles": instrumented(fuzz.judge.oracles.Oracles.after_op),
    "codec": instrumented(fuzz.lang.codec.decode),
    "executor": instrumented(fuzz.run.executor.run_op),
    "cint": instrumented(model.cint.c_int),
    "numpy": instrumented(numpy.lib.npyio.DataSource.open),
    "plugin": sorted(n for n, f in vars(plugin).items()
                     if inspect.isfunction(f) and f.__module__ == plugin.__name__
                     and instrumented(f)),
}))
"""


def _probe(tmp_path, **env):
    env = {**os.environ, "IOPGFUZZ_CRASHES": str(tmp_path / "crashes"),
           "IOPGFUZZ_VARIANT": "examples/naive_leaf_walker.py:NaiveLeafWalker", **env}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_target_instruments_the_code_under_test_only(tmp_path):
    out = _probe(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["io_pgtable_arm"] and got["memory"] and got["v1"] and got["oracles"]
    assert not got["codec"] and not got["executor"] and not got["cint"] and not got["numpy"]
    # the example plugin's two walker functions (see examples/naive_leaf_walker.py)
    assert got["plugin"] == ["__naive_sync_map", "naive_iotlb_sync_map"]


def test_walker_mode_leaves_the_kernel_model_out(tmp_path):
    out = _probe(tmp_path, IOPGFUZZ_INSTRUMENT="walker")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["v1"] and got["oracles"]
    assert not got["io_pgtable_arm"] and not got["memory"] and not got["codec"]
    assert got["plugin"] == ["__naive_sync_map", "naive_iotlb_sync_map"]


def test_an_unknown_instrument_mode_is_refused_by_name(tmp_path):
    out = _probe(tmp_path, IOPGFUZZ_INSTRUMENT="everything")
    assert out.returncode != 0
    assert "IOPGFUZZ_INSTRUMENT='everything'" in out.stderr and "walker" in out.stderr


def test_auto_mode_instruments_no_python_when_both_worlds_are_c_worlds(tmp_path, real_tree):
    # both worlds C: the kernel C's edges guide; the Python left is the core (the same in both
    # worlds) and the oracles, and nothing of it is instrumented
    seed = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"
    env = {"IOPGFUZZ_VARIANT": f"c:{seed}", "IOPGFUZZ_REFERENCE": "c"}
    out = _probe(tmp_path, **env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(v for k, v in got.items() if k != "plugin") and not got["plugin"], got
    # a C variant against the model's reference: the model is the reference, so it counts
    out = _probe(tmp_path, IOPGFUZZ_VARIANT=f"c:{seed}")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["io_pgtable_arm"] and got["oracles"]
    # an explicit mode wins
    out = _probe(tmp_path, IOPGFUZZ_INSTRUMENT="model", **env)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["io_pgtable_arm"] and got["memory"]

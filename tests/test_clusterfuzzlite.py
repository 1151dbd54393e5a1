"""The ClusterFuzzLite / OSS-Fuzz layout (.clusterfuzzlite/, docs/clusterfuzzlite.md): what can be
checked without Docker.  The seed zips, the dictionary and the options are checked against the
codec and the corpus.  build.sh runs with stand-ins for pip3 and compile_python_fuzzer.  The
entry scripts run as libFuzzer executables.
"""

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fuzz.campaigns import cflite
from fuzz.judge.findings import CORRECTNESS_KINDS, EFFICIENCY_KINDS
from fuzz.lang import codec
from fuzz.lang import ops as O
from fuzz.repro.replay import load_input
from fuzz.run.executor import run_scenario
from model.config import CONCAT_LEGACY, QUIRK_BITS
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
CFL = ROOT / ".clusterfuzzlite"
SEED_FILES = sorted((ROOT / "corpus" / "differential").glob("*.ops"))
V1_REPRODUCERS = sorted((ROOT / "crashes" / "v1").glob("*.ops"))
WORKFLOWS = ROOT / ".github" / "workflows"
TIMEOUT = 20  # seconds per subprocess


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOPGFUZZ_")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's fuzz/ and model/, whatever the cwd
    env.update(extra)
    return env


def _run(cmd, cwd, timeout=TIMEOUT, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, errors="replace", timeout=timeout)


def _options(target: str) -> dict[str, str]:
    cp = configparser.ConfigParser()
    assert cp.read(CFL / f"{target}.options") == [str(CFL / f"{target}.options")]
    assert cp.sections() == ["libfuzzer"]
    return dict(cp["libfuzzer"])


def _flags(target: str, dict_path: Path) -> list[str]:
    """The .options file as libFuzzer flags, the dictionary taken from `dict_path`."""
    return [f"-{k}={dict_path if k == 'dict' else v}" for k, v in _options(target).items()]


def _seed_dir(tmp_path: Path, name: str, files: list[Path]) -> Path:
    d = tmp_path / name
    d.mkdir()
    for p in files:
        (d / p.stem).write_bytes(codec.encode(load_input(p)))
    return d


def _dict_size() -> int:
    return len(cflite.parse_dictionary((CFL / "iopgfuzz.dict").read_text()))


# --- seed corpora ------------------------------------------------------------------------------

def test_seed_zip_has_one_seed_per_ops_file_that_decodes_to_its_scenario(tmp_path):
    from fuzz.cli import main

    assert len(SEED_FILES) >= 10
    assert main(["cflite-seeds", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{t}_seed_corpus.zip" for t in cflite.TARGETS)
    for t in cflite.TARGETS:
        with zipfile.ZipFile(tmp_path / f"{t}_seed_corpus.zip") as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
        assert all("/" not in name for name in members)  # flat, as OSS-Fuzz unpacks it
        assert len(members) == len(SEED_FILES)
        for path in SEED_FILES:
            sc = load_input(path)
            data = codec.encode(sc)
            name = hashlib.sha1(data).hexdigest()
            assert members.get(name) == data, f"{path.name} missing from {t}'s seed zip"
            assert codec.decode(members[name]) == sc


def test_seed_zips_are_byte_for_byte_reproducible(tmp_path):
    a = cflite.write_seed_corpora(tmp_path / "a", ["fuzz_fixed"])
    b = cflite.write_seed_corpora(tmp_path / "b", ["fuzz_fixed"])
    assert a == b == {"fuzz_fixed": len(SEED_FILES)}
    name = "fuzz_fixed_seed_corpus.zip"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cflite_seeds_rejects_an_unknown_target(tmp_path, capsys):
    from fuzz.cli import main

    assert main(["cflite-seeds", str(tmp_path), "fuzz_nope"]) == 2
    assert "fuzz_nope" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --- dictionary --------------------------------------------------------------------------------

def test_dictionary_file_is_valid_and_matches_the_codec_now():
    text = (CFL / "iopgfuzz.dict").read_text()
    assert text == cflite.format_dictionary(), (
        "stale: python -m fuzz cflite-dict -o .clusterfuzzlite/iopgfuzz.dict")
    words = cflite.parse_dictionary(text)
    names = [n for n, _ in words]
    assert len(words) >= 50 and all(names) and len(set(names)) == len(names)
    assert all(1 <= len(w) <= cflite.MAX_DICT_WORD for _, w in words)
    assert len({w for _, w in words}) == len(words)


@pytest.mark.parametrize("line, name, word", [
    ('"abc"', "", b"abc"), ('kw1="\\x41\\x0a"', "kw1", b"A\n"), ('"a\\\\b"', "", b"a\\b"),
    ('"\\""', "", b'"'), ('  x = "sp\tace"  ', "x", b"sp\tace"), ('"\\xfF"', "", b"\xff")])
def test_dictionary_parser_accepts_what_libfuzzer_accepts(line, name, word):
    assert cflite.parse_dictionary(f"# comment\n\n{line}\n") == [(name, word)]


@pytest.mark.parametrize("line", [
    "abc", '"abc', 'x=""', '"\\q"', '"\\x4"', '"\\x4g"', '"caf\u00e9"', '"tab\x01"'])
def test_dictionary_parser_rejects_what_libfuzzer_rejects(line):
    with pytest.raises(ValueError, match="line 2"):
        cflite.parse_dictionary(f'"ok"\n{line}\n')


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _value(text: str) -> int:
    units = {"K": 10, "M": 20, "G": 30, "T": 40}
    return int(text[:-1]) << units[text[-1]] if text[-1] in units else int(text)


def test_every_dictionary_word_means_what_its_name_says():
    words = dict(cflite.parse_dictionary((CFL / "iopgfuzz.dict").read_text()))
    kinds = {t.kind.replace(".", "_"): t for t in codec.OPCODES}
    seen = set()
    for name, w in words.items():
        prefix, _, rest = name.partition("_")
        r = codec.Reader(w)
        if prefix == "op" and rest in kinds:
            assert len(w) == 1 and type(codec.decode_op(r)) is kinds[rest], name
        elif prefix == "op":
            expect = {"evict_all": O.Evict(None), "fail_alloc": O.Fail("alloc", 1, None),
                      "fail_sync_map": O.Fail("sync_map", 1, None)}[rest]
            assert codec.decode_op(r) == expect and r.exhausted, name
        elif prefix == "cfg":
            c = codec.decode_config(r)
            assert r.exhausted, name
            parts = rest.split("_")
            if parts[0] != "mali":
                parts[:2] = ["-".join(parts[:2])]
            fmt, granule, ias, *extra = parts
            assert (c.fmt, c.granule, c.ias) == (fmt, _value(granule), int(ias)), name
            assert bool(c.quirks & QUIRK_BITS["ttbr1"]) == ("ttbr1" in extra), name
            assert (c.concat == CONCAT_LEGACY) == ("legacy" in extra), name
            res = run_scenario(O.Scenario(c, ()), get_variant("reference"))
            assert res.config_error is None, f"{name}: the model refuses {c}: {res.config_error}"
        else:
            value = {"size": lambda s: _value(s), "addr": lambda s: 1 << int(s[2:]),
                     "top": lambda s: (1 << int(s[2:])) - 4096,
                     "u64": {"max": codec.U64, "top_4K": codec.U64 + 1 - 4096}.get}[prefix](rest)
            assert w == _leb128(value) and r.varint() == value and r.exhausted, name
        seen.add(prefix)
    assert seen == {"op", "cfg", "size", "addr", "top", "u64"}
    assert set(kinds) <= {n[3:] for n in words if n.startswith("op_")}  # every opcode


def test_max_encoded_len_is_exactly_what_decode_can_read():
    worst = b"\xff" * (cflite.max_encoded_len() + 100)  # every field at its longest: map_sg ops
    r = codec.Reader(worst)
    codec.decode_config(r)
    ops = [codec.decode_op(r) for _ in range(codec.MAX_OPS)]
    assert all(isinstance(op, O.MapSg) and len(op.segs) == codec.MAX_SEGS for op in ops)
    assert r.pos == cflite.max_encoded_len()
    assert codec.decode(worst[:r.pos]) == codec.decode(worst)


# --- options, build.sh, Dockerfile, project.yaml -------------------------------------------------

@pytest.mark.parametrize("target", sorted(cflite.TARGETS))
def test_options_file(target):
    opts = _options(target)
    assert opts["dict"] == f"{target}.dict"
    assert int(opts["max_len"]) == cflite.MAX_LEN
    longest_seed = max(len(codec.encode(load_input(p))) for p in SEED_FILES)
    assert longest_seed <= int(opts["max_len"]) <= cflite.max_encoded_len()
    assert 0 < int(opts["timeout"]) < 30  # under ClusterFuzzLite's 30 s to reproduce a crash
    assert int(opts["rss_limit_mb"]) >= 1024
    # OSS-Fuzz's run_fuzzer turns every line with "=" into a flag: nothing else may be there.
    lines = [ln.strip() for ln in (CFL / f"{target}.options").read_text().splitlines()]
    assert lines[0] == "[libfuzzer]"
    assert all(re.fullmatch(r"[a-z_]+ = \S+", ln) for ln in lines[1:] if ln)


def test_targets_entry_scripts_options_and_build_sh_agree():
    scripts = {p.stem for p in CFL.glob("fuzz_*.py")}
    assert scripts == set(cflite.TARGETS)
    build = (CFL / "build.sh").read_text()
    m = re.search(r'^TARGETS="([^"]*)"$', build, re.M)
    assert m and sorted(m.group(1).split()) == sorted(cflite.TARGETS)
    for t in cflite.TARGETS:
        text = (CFL / f"{t}.py").read_text()
        assert f'cflite.run("{t}", sys.argv)' in text
        assert not re.search(r"^from __future__", text, re.M)  # the coverage build prepends
        assert text.index("import numpy") < text.index("from fuzz.campaigns import cflite")
        assert os.access(CFL / f"{t}.py", os.X_OK)
        assert (CFL / f"{t}.options").is_file()
    assert cflite.TARGETS["fuzz_fixed"].variant == "fixed"
    assert cflite.TARGETS["fuzz_v1"].variant == "v1"


def test_build_sh_is_bash_clean():
    assert subprocess.run(["bash", "-n", str(CFL / "build.sh")]).returncode == 0


def test_dockerfile_and_project_yaml():
    lines = [ln.strip() for ln in (CFL / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "FROM gcr.io/oss-fuzz-base/base-builder-python"
    assert "COPY . $SRC/iopgfuzz" in lines and "WORKDIR $SRC/iopgfuzz" in lines
    assert lines[-1] == "COPY .clusterfuzzlite/build.sh $SRC/"
    yaml = (CFL / "project.yaml").read_text()
    assert re.search(r"^language: python$", yaml, re.M)
    assert re.search(r"^fuzzing_engines:\n  - libfuzzer$", yaml, re.M)


STAND_INS = {
    "pip3": '#!/bin/sh\necho "pip3 $*" >> "$LOG"\n',
    "python3": '#!/bin/sh\nexec "$PYTHON" "$@"\n',
    # OSS-Fuzz's compile_python_fuzzer names the target after the script and runs it through a
    # wrapper; this one records its arguments and runs the script with this tree's Python.
    "compile_python_fuzzer": """#!/bin/bash -eu
fuzzer_path=$1
shift
echo "compile_python_fuzzer $fuzzer_path $*" >> "$LOG"
name=$(basename -s .py "$fuzzer_path")
printf '#!/bin/sh\\n# LLVMFuzzerTestOneInput\\nexec "%s" "%s" "$@"\\n' "$PYTHON" "$fuzzer_path" \\
    > "$OUT/$name"
chmod +x "$OUT/$name"
""",
}


def test_build_sh_with_stand_ins_produces_the_oss_fuzz_layout_and_a_runnable_target(tmp_path):
    bin_dir, out, work = tmp_path / "bin", tmp_path / "out", tmp_path / "work"
    for d in (bin_dir, out, work):
        d.mkdir()
    for name, text in STAND_INS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    r = _run(["bash", CFL / "build.sh"], ROOT, OUT=str(out), WORK=str(work), SRC=str(ROOT.parent),
             LOG=str(log), PYTHON=sys.executable,
             PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("pip3 install") and calls[0].endswith(" .")
    compiled = {Path(c.split()[1]).stem: c for c in calls if c.startswith("compile_python_fuzzer")}
    assert set(compiled) == set(cflite.TARGETS)
    assert all("--hidden-import=fuzz.target" in c for c in compiled.values())
    assert all(str(work) in c.split()[1] for c in compiled.values())  # a copy, not the source
    for t in cflite.TARGETS:
        for suffix in ("", ".dict", ".options", "_seed_corpus.zip"):
            assert (out / f"{t}{suffix}").is_file(), f"{t}{suffix} missing from $OUT"
        assert (out / f"{t}.dict").read_bytes() == (CFL / "iopgfuzz.dict").read_bytes()
    # Run it as OSS-Fuzz's run_fuzzer would: the options as flags, the seed zip unpacked.
    seeds = tmp_path / "seeds"
    with zipfile.ZipFile(out / "fuzz_fixed_seed_corpus.zip") as z:
        z.extractall(seeds)
    r = _run([out / "fuzz_fixed", *_flags("fuzz_fixed", out / "fuzz_fixed.dict"), "-runs=30",
              seeds], out, IOPGFUZZ_CRASHES=str(tmp_path / "buckets"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "Done 30 runs" in out and f"Dictionary: {_dict_size()} entries" in out


# --- the entry scripts as libFuzzer executables --------------------------------------------------

def test_fuzz_fixed_runs_clean_with_its_options_on_the_seeds(tmp_path):
    seeds = _seed_dir(tmp_path, "seeds", SEED_FILES)
    buckets = tmp_path / "buckets"
    r = _run([sys.executable, CFL / "fuzz_fixed.py", *_flags("fuzz_fixed", CFL / "iopgfuzz.dict"),
              "-runs=50", seeds], tmp_path, IOPGFUZZ_CRASHES=str(buckets))
    err = r.stdout + r.stderr
    assert r.returncode == 0, err[-3000:]
    assert "Done 50 runs" in err and f"Dictionary: {_dict_size()} entries" in err
    assert f"buckets in {buckets}" in err and "variant fixed" in err
    assert not list(tmp_path.glob("crash-*"))
    # Instrumented as by fuzz.target: the model and the oracles; not the harness (codec,
    # executor), not NumPy, not fuzz.campaigns.cflite.
    instrumented = set(re.findall(r"^INFO: Instrumenting (\S+)$", err, re.M))
    assert {"model.world", "model.variants.fixed", "fuzz.judge.oracles"} <= instrumented
    assert not {"fuzz.lang.codec", "fuzz.run.executor"} & instrumented
    assert not {m for m in instrumented if m.startswith("numpy")}
    assert "fuzz.campaigns.cflite" not in err


def test_fuzz_v1_records_known_kinds_and_crashes_on_the_rest(tmp_path):
    repro = _seed_dir(tmp_path, "repro", V1_REPRODUCERS)
    known = tmp_path / "known"
    r = _run([sys.executable, CFL / "fuzz_v1.py", "-runs=0", repro], tmp_path,
             IOPGFUZZ_CRASHES=str(known))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    recorded = {p.name for p in known.iterdir() if not p.name.startswith(".")}
    correctness = recorded - set(EFFICIENCY_KINDS)
    assert correctness == set(cflite.TARGETS["fuzz_v1"].expected)  # all found, none crashed
    assert not list(tmp_path.glob("crash-*"))

    r = _run([sys.executable, CFL / "fuzz_v1.py", "-runs=0", repro], tmp_path,
             IOPGFUZZ_CRASHES=str(tmp_path / "none"), IOPGFUZZ_EXPECTED_KINDS="")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    # the first reproducer libFuzzer runs crashes (which one is libFuzzer's order: by size),
    # with one of the kinds v1's reproducers declare, and the trace
    m = re.search(r"CorrectnessFinding: ([a-z-]+)\|v1\|", out)
    assert m and m.group(1) in cflite.TARGETS["fuzz_v1"].expected and "!! FINDING" in out
    crashes = list(tmp_path.glob("crash-*"))
    assert len(crashes) == 1
    replay = _run([sys.executable, "-m", "fuzz", "replay", crashes[0], "--variant", "v1"],
                  tmp_path)
    assert replay.returncode == 1 and "FINDING" in replay.stdout
    # Stateless: the same crash file crashes again in a new process with a used bucket folder.
    again = _run([sys.executable, CFL / "fuzz_v1.py", "-runs=3", crashes[0]], tmp_path,
                 IOPGFUZZ_CRASHES=str(tmp_path / "none"), IOPGFUZZ_EXPECTED_KINDS="-")
    assert again.returncode != 0 and "CorrectnessFinding: " in again.stdout + again.stderr


def test_v1_known_kinds_are_those_its_reproducers_declare():
    declared = set()
    for p in V1_REPRODUCERS:
        m = re.search(r"^# expect v1: (.*)$", p.read_text(), re.M)
        assert m, p.name
        declared |= {k.strip() for k in m.group(1).split(",")} - {"-", ""}
    assert set(cflite.TARGETS["fuzz_v1"].expected) == declared
    assert cflite.TARGETS["fuzz_fixed"].expected == ()
    for t in cflite.TARGETS.values():
        assert set(t.expected) <= set(CORRECTNESS_KINDS)


@pytest.mark.parametrize("value, kinds", [
    ("", set()), ("-", set()), ("warn, stale-read", {"warn", "stale-read"})])
def test_expected_kinds_override(value, kinds):
    t = cflite.TARGETS["fuzz_v1"]
    assert cflite.expected_kinds(t, {"IOPGFUZZ_EXPECTED_KINDS": value}) == kinds
    assert cflite.expected_kinds(t, {}) == set(t.expected)
    with pytest.raises(SystemExit, match="stale-reed"):
        cflite.expected_kinds(t, {"IOPGFUZZ_EXPECTED_KINDS": "warn,stale-reed"})


def test_fuzz_cflite_imports_no_model_or_fuzz_module():
    code = ("import sys, fuzz.campaigns.cflite; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('model', 'fuzz')))")
    r = _run([sys.executable, "-c", code], ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['fuzz', 'fuzz.campaigns', 'fuzz.campaigns.cflite']"


# --- GitHub workflows ----------------------------------------------------------------------------

MODES = {"cflite_pr.yml": ["code-change"], "cflite_batch.yml": ["batch"],
         "cflite_cron.yml": ["prune", "coverage"]}


@pytest.mark.parametrize("name", sorted(MODES))
def test_workflow_structure(name):
    text = (WORKFLOWS / name).read_text()
    assert "\t" not in text
    assert re.findall(r"^\s+mode: '([a-z-]+)'$", text, re.M) == MODES[name]
    builds = re.findall(r"uses: google/clusterfuzzlite/actions/build_fuzzers@v1$", text, re.M)
    runs = re.findall(r"uses: google/clusterfuzzlite/actions/run_fuzzers@v1$", text, re.M)
    assert len(builds) == len(runs) == len(MODES[name])
    assert len(re.findall(r"^\s+language: python$", text, re.M)) == len(builds)
    if "coverage" in MODES[name]:
        assert re.search(r"^\s+sanitizer: coverage$", text, re.M)


@pytest.mark.parametrize("name", sorted(MODES))
def test_workflow_parses_as_yaml(name):
    yaml = pytest.importorskip("yaml")  # not a dependency; checked where PyYAML is installed
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    assert set(doc) == {"name", True, "permissions", "jobs"}  # YAML 1.1 reads `on` as True
    modes = []
    for job in doc["jobs"].values():
        build, run = job["steps"]
        assert build["uses"] == "google/clusterfuzzlite/actions/build_fuzzers@v1"
        assert build["with"]["language"] == "python"
        assert run["uses"] == "google/clusterfuzzlite/actions/run_fuzzers@v1"
        modes.append(run["with"]["mode"])
    assert modes == MODES[name]


def test_docs_and_readme_point_at_each_other():
    doc = (ROOT / "docs" / "clusterfuzzlite.md").read_text()
    for t in cflite.TARGETS:
        assert t in doc
    for mode in ("code-change", "batch", "prune", "coverage"):
        assert f"mode: '{mode}'" in doc
    assert "infra/helper.py build_fuzzers --external" in doc
    readme = (ROOT / "README.md").read_text()
    assert "## Beyond one machine" in readme and "docs/clusterfuzzlite.md" in readme
    assert shutil.which("bash")

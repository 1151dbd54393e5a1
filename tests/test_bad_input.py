"""Bad files: every command that reads one exits with 2 and says which file (and line) and what.

The commands that read inputs (`replay`, `minimize`, `export`) take `.ops` text files, binary
(fuzzer) inputs and bucket folders; `triage` reads a crashes folder; `campaign` takes folders.
Each is given corrupt, truncated, wrong-version, empty, binary-as-text, missing and
wrong-type paths, and bucket folders that are incomplete or damaged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.judge.findings import signature_hash
from fuzz.lang import codec
from fuzz.lang.ops import OpsSyntaxError
from fuzz.repro.replay import load_input
from fuzz.repro.triage import Triage
from fuzz.run.executor import run_scenario
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
CRASH = ROOT / "crashes" / "v1" / "concat-pgd-page-boundary.ops"
V = "# iopgfuzz ops v1"


def _run(command: str, path: Path, tmp_path: Path) -> int:
    extra = {"replay": [], "minimize": ["-o", str(tmp_path / "out.ops")],
             "export": ["--format", "kunit"]}[command]
    return main([command, str(path), *extra])


# name -> (file name, contents, what stderr must say after the file name)
BAD_FILES = {
    "garbage-line": ("garbage.ops", f"{V}\nconfig fmt=arm64-s1\nmap 0x1000 0x2000 4K\n"
                     "\x07frobnicate the pte\n", [":4: ", "unknown op"]),
    "cut-mid-line": ("cut.ops", f"{V}\nconfig fmt=arm64-s1 granule=4K\nmap 0x1000 0x20",
                     [":3: ", "map: expected 3 arguments", "cut short"]),
    "cut-mid-token": ("cut2.ops", f"{V}\nconfig fmt=arm64-s1 granule=4K\nmap 0x1000 0x2000 4",
                      [":3: ", "no final newline", "cut short"]),
    "cut-in-config": ("cut3.ops", f"{V}\nconfig fmt=arm64-s1 gran", [":2: ", "'gran'",
                                                                      "cut short"]),
    "cut-before-config": ("cut4.ops", f"{V}\n", [":1: ", "no config line and no op",
                                                 "cut short"]),
    "cut-in-version": ("cut5.ops", "# iopgfuzz op", [":1: ", "first line must be"]),
    "wrong-version": ("v9.ops", "# iopgfuzz ops v9\nconfig fmt=arm64-s1\nmap 0 0 4K\n",
                      [":1: ", "unsupported version line '# iopgfuzz ops v9'",
                       "'# iopgfuzz ops v1'"]),
    "wrong-version-no-suffix": ("crash-v9", "# iopgfuzz ops v9\nmap 0 0 4K\n",
                                [":1: ", "unsupported version line"]),
    "no-version": ("noversion.ops", "config fmt=arm64-s1\nmap 0 0 4K\n",
                   [":1: ", "first line must be"]),
    "empty-ops": ("empty.ops", "", [": empty file"]),
    "empty-binary": ("input.bin", "", [": empty file"]),
    "blank-ops": ("blank.ops", "\n\n  \n", [": empty file"]),
    "binary-as-ops": ("bin.ops", b"# iopgfuzz ops v1\nconfig fmt=arm64-s1\nmap \xff\xfe\x00 0 4K\n",
                      [":3: ", "not UTF-8", "0xff"]),
    "pure-binary-as-ops": ("crash.ops", bytes(range(200, 256)), [":1: ", "not UTF-8"]),
    "bad-number": ("num.ops", f"{V}\nconfig fmt=arm64-s1\nunmap 0x1000 0xZZ\n",
                   [":3: ", "0xZZ"]),
    "refused-config": ("refused.ops", f"{V}\nconfig fmt=arm64-s1 granule=4K ias=12 oas=48\n"
                       "map 0 0 4K\n", [": ", "refuses this configuration", "ias 12"]),
}


@pytest.mark.parametrize("command", ["replay", "minimize", "export"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_exit_2_naming_file_and_problem(case, command, tmp_path, capsys):
    name, content, expect = BAD_FILES[case]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert _run(command, path, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) + expect[0] in err, err
    for text in expect[1:]:
        assert text in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out.ops").exists()


@pytest.mark.parametrize("command", ["replay", "minimize", "export"])
def test_missing_path_and_plain_folder_exit_2(command, tmp_path, capsys):
    missing = tmp_path / "nope.ops"
    assert _run(command, missing, tmp_path) == 2
    assert f"error: {missing}: cannot read: No such file or directory" in capsys.readouterr().err
    folder = tmp_path / "folder"
    folder.mkdir()
    assert _run(command, folder, tmp_path) == 2
    assert f"error: {folder}: is a folder, not an input file" in capsys.readouterr().err


def test_every_truncation_of_a_reproducer_is_an_error_or_a_shorter_scenario(tmp_path):
    """Cut a reproducer after every byte: the result either fails to load, naming the file, or
    (cut exactly at the end of a line after the config) is the scenario's first ops."""
    raw = CRASH.read_bytes()
    full = load_input(CRASH)
    cut = tmp_path / "cut.ops"
    shorter = 0
    for n in range(len(raw)):
        cut.write_bytes(raw[:n])
        try:
            sc = load_input(cut)
        except OpsSyntaxError as e:
            assert str(e).startswith(f"{cut}:"), e
            continue
        assert raw[:n].endswith(b"\n") and b"\nconfig " in raw[:n], raw[:n]
        assert sc.config == full.config and sc.ops == full.ops[:len(sc.ops)]
        shorter += 1
    assert shorter == len(full.ops)          # cut after the config, after each op but the last


# --- bucket folders ----------------------------------------------------------------------------

def _bucket(root: Path) -> Path:
    res = run_scenario(load_input(CRASH), get_variant("v1"))
    t = Triage(root, "w")
    t.record(codec.encode(res.scenario), res, "the trace")
    t.flush()
    (d,) = [p for p in root.glob("*/*") if p.is_dir() and p.parent.name != ".counts"]
    return d


def test_a_complete_bucket_folder_is_an_input(tmp_path, capsys):
    d = _bucket(tmp_path)
    assert main(["replay", str(d)]) == 1
    assert "stale-read|v1" in capsys.readouterr().out
    assert main(["export", str(d), "--format", "pytest"]) == 0
    assert main(["minimize", str(d), "-o", str(tmp_path / "min.ops")]) == 0


def _no_report(d):
    (d / "report.txt").unlink()


def _truncated_report(d):
    text = (d / "report.txt").read_text()
    (d / "report.txt").write_text(text[:text.index("\nkind: ") + 4])


def _binary_report(d):
    (d / "report.txt").write_bytes(b"signature: \xff\xfe\n")


def _empty_report(d):
    (d / "report.txt").write_text("")


def _no_input_ops(d):
    (d / "input.ops").unlink()


def _moved(d):
    d.rename(d.with_name("0123456789ab"))


BAD_BUCKETS = {
    "missing-report": (_no_report, "", "incomplete bucket: no report.txt"),
    "half-written-report": (_truncated_report, "/report.txt:2: ",
                            "expected 'kind: ...', found 'kin'"),
    "empty-report": (_empty_report, "/report.txt:1: ", "expected 'signature: ...'"),
    "binary-report": (_binary_report, "/report.txt:1: ", "not UTF-8"),
    "missing-input": (_no_input_ops, "", "report.txt but no input.ops"),
    "wrong-folder": (_moved, "/report.txt:1: ", "belongs in a folder named"),
}


@pytest.mark.parametrize("command", ["replay", "minimize", "export"])
@pytest.mark.parametrize("case", sorted(BAD_BUCKETS))
def test_damaged_bucket_folder_exit_2(case, command, tmp_path, capsys):
    damage, where, what = BAD_BUCKETS[case]
    d = _bucket(tmp_path / "crashes")
    damage(d)
    if case == "wrong-folder":
        d = d.with_name("0123456789ab")
    assert _run(command, d, tmp_path) == 2
    err = capsys.readouterr().err
    assert f"error: {d}{where}" in err and what in err, err


# --- triage ------------------------------------------------------------------------------------

def test_triage_of_a_missing_or_wrong_folder_exit_2(tmp_path, capsys):
    assert main(["triage", str(tmp_path / "nope")]) == 2
    assert f"error: {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["triage", str(f)]) == 2
    assert f"error: {f}: not a folder" in capsys.readouterr().err
    assert main(["triage", str(tmp_path)]) == 0
    assert "no buckets" in capsys.readouterr().out


@pytest.mark.parametrize("case", sorted(set(BAD_BUCKETS) - {"missing-report"}))
def test_triage_names_a_damaged_bucket_and_exits_2(case, tmp_path, capsys):
    damage, where, what = BAD_BUCKETS[case]
    root = tmp_path / "crashes"
    d = _bucket(root)
    damage(d)
    if case == "wrong-folder":
        d = d.with_name("0123456789ab")
    assert main(["triage", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"error: {d}{where}" in err and what in err, err


def test_triage_ignores_incomplete_buckets_and_temporaries(tmp_path, capsys):
    root = tmp_path / "crashes"
    d = _bucket(root)
    sig = "stale-read|v1|-|-|concat"
    assert d.name == signature_hash(sig)
    # an interrupted write of the old kind (no report.txt) and of the new (hidden folder), and
    # the temporaries of interrupted counts and summary writes
    old = root / "warn" / signature_hash("warn|v1|x|-|exact")
    old.mkdir(parents=True)
    (old / "input.bin").write_bytes(b"\x01")
    tmpdir = root / "oob-access" / ".0123456789ab.99999.tmp"
    tmpdir.mkdir(parents=True)
    (tmpdir / "report.txt").write_text("signature: oob-access|v1|x|-|-\nkind: oob-access\n")
    (root / ".counts" / ".w.json.99999.tmp").write_text('{"half')
    (root / ".summary.json.99999.tmp").write_text("{")
    assert main(["triage", str(root)]) == 1
    cap = capsys.readouterr()
    assert f"note: ignoring {old}: incomplete bucket" in cap.err
    assert "error" not in cap.err
    assert sig in cap.out and "oob-access" not in cap.out and "warn" not in cap.out


def _count(out: str, sig: str) -> int:
    (line,) = [ln for ln in out.splitlines() if ln.endswith(f"  {sig}")
               and "+ secondary" not in ln]           # (the same stale read again, later)
    return int(line.split()[1])


def test_triage_names_an_unreadable_counts_file(tmp_path, capsys):
    root = tmp_path / "crashes"
    _bucket(root)
    assert main(["triage", str(root)]) == 1
    before = _count(capsys.readouterr().out, "stale-read|v1|-|-|concat")
    bad = root / ".counts" / "other.json"
    bad.write_text('{"stale-read|v1|-|-|concat": [3, ')
    assert main(["triage", str(root)]) == 2
    assert f"error: {bad}: unreadable counts file" in capsys.readouterr().err
    bad.write_text(json.dumps({"stale-read|v1|-|-|concat": [3, 1.0]}))
    assert main(["triage", str(root)]) == 1
    assert _count(capsys.readouterr().out, "stale-read|v1|-|-|concat") == before + 3


# --- outputs and campaign folders ------------------------------------------------------------

def test_outputs_that_cannot_be_written_exit_2(tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["minimize", str(CRASH), "-o", str(folder)]) == 2
    assert f"error: {folder}: cannot write: Is a directory" in capsys.readouterr().err
    assert main(["export", str(CRASH), "--format", "kunit", "-o", str(folder)]) == 2
    assert f"error: {folder}: cannot write: Is a directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())


def test_campaign_folders_that_are_files_exit_2(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["campaign", "--corpus", str(f), "--crashes", str(tmp_path / "c")]) == 2
    assert f"error: --corpus {f}: not a folder" in capsys.readouterr().err
    assert main(["campaign", "--corpus", str(tmp_path / "k"), "--crashes", str(f)]) == 2
    assert f"error: --crashes {f}: not a folder" in capsys.readouterr().err


# --- the real exit code ---------------------------------------------------------------------

def test_python_m_fuzz_exits_2_on_bad_files(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    bad = tmp_path / "v9.ops"
    bad.write_text("# iopgfuzz ops v9\n")
    p = subprocess.run([sys.executable, "-m", "fuzz", "replay", str(bad)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == (f"error: {bad}:1: unsupported version line '# iopgfuzz ops v9' "
                        "(this iopgfuzz reads '# iopgfuzz ops v1')\n")
    p = subprocess.run([sys.executable, "-m", "fuzz", "triage", str(tmp_path / "nope")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "no such folder" in p.stderr

"""A campaign killed with SIGKILL at any moment leaves complete files only, and resumes.

* `atomic_write` of a large file, killed again and again in the middle: the file is always
  absent or whole; the temporaries left behind are hidden and removed by
  `clean_stale_temporaries`.
* A real campaign (`python -m fuzz campaign`, one libFuzzer worker, v1) is started, killed with
  SIGKILL (its whole process group) at pseudo-random moments, and restarted on the same folders,
  several times, then run to its end.  After every kill: the worker is gone too, every bucket
  is complete and consistent (report.txt, input.bin, input.ops describing the same input), no
  temporary counts as a bucket, and `triage` reads the folder.  After every restart: libFuzzer
  read every corpus file kept so far, the corpus and the buckets only grew, no known bucket was
  reported as new, and the counts only grew.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.lang import codec
from fuzz.repro.replay import load_input
from fuzz.repro.triage import clean_stale_temporaries, scan_buckets

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
pytest.importorskip("atheris", reason="the fuzz extra is not installed")

# -- atomic_write under SIGKILL ----------------------------------------------------------------

WRITER = """\
import sys
from pathlib import Path
from fuzz.repro.triage import atomic_write
target, size = Path(sys.argv[1]), int(sys.argv[2])
i = 0
while True:
    atomic_write(target, bytes([i % 251]) * size)
    if i == 0:
        print("ready", flush=True)
    i += 1
"""


def test_atomic_write_killed_mid_write_leaves_old_or_whole_file(tmp_path):
    r = random.Random(11)
    size = 4 << 20
    target = tmp_path / "big.bin"
    interrupted = 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)], env=ENV,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(r.uniform(0.0, 0.3))
        p.kill()
        p.wait()
        p.stdout.close()
        data = target.read_bytes()
        assert len(data) == size and data == data[:1] * size, "a half-written file"
        leftovers = [x.name for x in tmp_path.iterdir() if x.name != "big.bin"]
        assert all(re.fullmatch(rf"\.big\.bin\.{p.pid}\.tmp", n) for n in leftovers), leftovers
        interrupted += bool(leftovers)
        assert [x.name for x in clean_stale_temporaries(tmp_path)] == leftovers
        print("killed writer; leftovers", leftovers)
        assert [x.name for x in tmp_path.iterdir()] == ["big.bin"]
    assert interrupted, "no kill landed inside a write: the test did not test anything"


BUCKET_WRITER = """\
import sys
from pathlib import Path
from fuzz.run.executor import run_scenario
from fuzz.repro.replay import load_input
from fuzz.repro.triage import Triage
from model.variants import get_variant
root, source = Path(sys.argv[1]), sys.argv[2]
res = run_scenario(load_input(source), get_variant("v1"))
trace = "x" * (4 << 20)                     # a long report: a long window to be killed in
i = 0
while True:
    Triage(root / f"r{i}", "w").record(b"", res, trace)
    if i == 0:
        print("ready", flush=True)
    i += 1
"""


def test_bucket_write_killed_mid_write_leaves_no_partial_bucket(tmp_path):
    r = random.Random(12)
    source = ROOT / "crashes/v1/concat-pgd-page-boundary.ops"
    interrupted = 0
    for k in range(6):
        root = tmp_path / f"k{k}"
        p = subprocess.Popen([sys.executable, "-c", BUCKET_WRITER, str(root), str(source)],
                             env=ENV, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(r.uniform(0.0, 0.5))
        p.kill()
        p.wait()
        p.stdout.close()
        for run in sorted(root.iterdir()):
            scan = scan_buckets(run)
            assert not scan.problems and not scan.incomplete, (scan.problems, scan.incomplete)
            for b in scan.buckets:
                load_input(Path(b["reproducer"]).parent)
            hidden = [x for x in run.rglob(".*") if x.name != ".counts"]
            interrupted += bool(hidden)
            assert sorted(clean_stale_temporaries(run)) == sorted(hidden)
            if hidden:
                print("killed bucket writer; leftovers", [str(x.relative_to(run)) for x in hidden])
            assert not [x for x in run.rglob(".*") if x.name != ".counts"]
    assert interrupted, "no kill landed inside a bucket write: the test did not test anything"


# -- a real campaign under SIGKILL -------------------------------------------------------------

def _procs_mentioning(text: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains `text`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            out.append(int(d.name))
    return out


def _start(tmp: Path, seconds: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fuzz", "campaign", "--variant", "v1", "--time", str(seconds),
           "--jobs", "1", "--corpus", str(tmp / "corpus"), "--crashes", str(tmp / "crashes"),
           "--", "-reduce_inputs=0"]
    return subprocess.Popen(cmd, env=ENV, cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _corpus(tmp: Path) -> tuple[set[str], set[str]]:
    """(complete, half-written) corpus files: libFuzzer names each by its contents' SHA-1."""
    complete, partial = set(), set()
    for p in (tmp / "corpus").iterdir():
        assert re.fullmatch(r"[0-9a-f]{40}", p.name), f"unexpected corpus file {p.name}"
        ok = hashlib.sha1(p.read_bytes()).hexdigest() == p.name
        (complete if ok else partial).add(p.name)
    return complete, partial


def _check_buckets(tmp: Path) -> dict[str, int]:
    """Every bucket complete and consistent; returns {signature: count}."""
    crashes = tmp / "crashes"
    scan = scan_buckets(crashes)
    assert not scan.problems, [str(p) for p in scan.problems]
    assert not scan.incomplete, scan.incomplete       # buckets appear whole, by one rename
    visible = [d for d in crashes.glob("*/*") if d.is_dir() and not d.name.startswith(".")
               and d.parent.name not in ("logs", ".counts")]
    assert len(visible) == len(scan.buckets)
    for b in scan.buckets:
        d = Path(b["reproducer"]).parent
        assert sorted(x.name for x in d.iterdir()) == ["input.bin", "input.ops", "report.txt"]
        text_form = load_input(d)                                    # checks the bucket too
        assert codec.decode((d / "input.bin").read_bytes()) == text_form
        assert b["signature"] in (d / "report.txt").read_text()
    assert main(["triage", str(crashes)]) in (0, 1)
    return {b["signature"]: b["count"] for b in scan.buckets}


def _log(tmp: Path) -> str:
    p = tmp / "crashes" / "logs" / "worker-0.log"
    return p.read_text(errors="replace") if p.exists() else ""


def _files_read(log: str) -> int | None:
    m = re.search(r"INFO:\s+(\d+) files found in \S*corpus\b", log)
    return int(m.group(1)) if m else None


def test_campaign_killed_at_random_moments_stays_consistent_and_resumes(tmp_path):
    r = random.Random(2024)
    tag = str(tmp_path / "crashes")
    counts: dict[str, int] = {}
    complete: set[str] = set()
    reads = 0
    for round_ in range(5):
        known = set(counts)
        p = _start(tmp_path, 60)
        time.sleep(r.uniform(2.0, 6.0))
        assert p.poll() is None, p.stdout.read()
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        p.stdout.close()
        deadline = time.time() + 15
        while _procs_mentioning(tag) and time.time() < deadline:
            time.sleep(0.1)
        assert not _procs_mentioning(tag), "a worker outlived the killed campaign"

        log = _log(tmp_path)
        n = _files_read(log)
        if n is not None:                   # libFuzzer got as far as reading the corpus
            assert n == len(complete), f"round {round_}: read {n} of {len(complete)} files"
            reads += 1
        reported = set(re.findall(r"^NEW BUCKET (\S+)", log, re.M))
        assert not reported & known, f"known buckets reported as new: {reported & known}"

        now = _check_buckets(tmp_path)
        assert set(now) >= set(counts), "a bucket disappeared"
        assert all(now[s] >= n for s, n in counts.items()), "a count went down"
        counts = now
        now_complete, partial = _corpus(tmp_path)
        assert now_complete >= complete, "a corpus file disappeared"
        assert len(partial) <= 1                                     # at most the one in flight
        complete = now_complete
        hidden = [x.name for x in (tmp_path / "crashes").rglob(".*") if x.name != ".counts"]
        print(f"round {round_}: corpus read {n}, now {len(complete)} (+{len(partial)} partial), "
              f"{len(counts)} buckets, {sum(counts.values())} hits, temporaries {hidden}")

    # a last run to its end (6 s of fuzzing) on the same folders
    known = set(counts)
    p = _start(tmp_path, 6)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 1, out                                    # v1 has findings
    log = _log(tmp_path)
    assert _files_read(log) == len(complete), log[-3000:]
    reads += 1
    assert not set(re.findall(r"^NEW BUCKET (\S+)", log, re.M)) & known
    final = _check_buckets(tmp_path)
    assert set(final) >= known and all(final[s] >= n for s, n in counts.items())
    assert _corpus(tmp_path)[0] >= complete and not _corpus(tmp_path)[1]
    import json
    summary = json.loads((tmp_path / "crashes" / "summary.json").read_text())
    for b in summary["buckets"]:
        assert b["new"] == (b["signature"] not in known), b
    assert known, "the killed runs found no bucket at all: nothing was tested"
    assert reads >= 2


def test_campaign_start_cleans_up_after_a_killed_run(tmp_path):
    """What a killed run can leave: a half-written corpus file (libFuzzer writes in place), the
    temporaries of a bucket, a counts file and summary.json, and an old-style incomplete bucket.
    The next campaign removes the first four and rewrites the last when it meets it again."""
    from fuzz.campaigns.campaign import Options, run_campaign

    corpus, crashes, seeds = tmp_path / "corpus", tmp_path / "crashes", tmp_path / "extra"
    corpus.mkdir()
    whole = codec.encode(load_input(ROOT / "corpus/differential/s2-4k-concat.ops"))
    (corpus / hashlib.sha1(whole).hexdigest()).write_bytes(whole)
    cut = whole + b"\x09\x00"
    (corpus / hashlib.sha1(cut).hexdigest()).write_bytes(cut[:5])           # half-written
    (corpus / hashlib.sha1(b"empty").hexdigest()).write_bytes(b"")          # opened, not written
    (corpus / "my-own-input").write_bytes(b"\x01\x02")                      # not libFuzzer's
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [crashes / "stale-read" / f".0123456789ab.{dead.pid}.tmp",
             crashes / ".counts" / f".w.json.{dead.pid}.tmp",
             crashes / f".summary.json.{dead.pid}.tmp"]
    stale[0].mkdir(parents=True)
    (stale[0] / "input.bin").write_bytes(b"\x01")
    stale[1].parent.mkdir()
    stale[1].write_text('{"x')
    stale[2].write_text("{")
    live = crashes / f".summary.json.{os.getppid()}.tmp"     # a live process's: left alone
    live.write_text("{")
    old = crashes / "stale-read" / "66f4856a7759"            # stale-read|v1|-|-|concat
    old.mkdir()
    (old / "input.bin").write_bytes(b"\x00")
    seeds.mkdir()
    (seeds / "stale.bin").write_bytes(codec.encode(load_input(
        ROOT / "crashes/v1/concat-pgd-page-boundary.ops")))

    out = io.StringIO()
    run_campaign(Options(variant="v1", corpus=corpus, crashes=crashes, seeds=False,
                         libfuzzer=["-runs=0", str(seeds)]), out)
    assert "removed 3 temporary file(s) of its writes and 2 half-written corpus file(s)" in \
        out.getvalue(), out.getvalue()
    assert sorted(p.name for p in corpus.iterdir()) == sorted(
        [hashlib.sha1(whole).hexdigest(), "my-own-input"])
    assert not any(p.exists() for p in stale) and live.exists()
    assert sorted(p.name for p in old.iterdir()) == ["input.bin", "input.ops", "report.txt"]
    assert load_input(old).ops                               # rewritten whole

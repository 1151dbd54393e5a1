"""A campaign: N Atheris workers on one corpus, live progress, then a bucket table and
`<crashes>/summary.json`.

Life cycle of a finding: found by a worker (bucket written atomically by `fuzz.repro.triage`) ->
counted by every worker that meets it again -> listed here and in summary.json -> reduced with
`python -m fuzz minimize` -> reported with `python -m fuzz export`.

Resuming: the corpus folder is libFuzzer's; running again with the same `--corpus` continues from
everything found so far, and buckets already on disk are only counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..judge.findings import is_crash
from ..lang import codec
from ..repro.replay import load_input
from ..repro.triage import (
    atomic_write,
    bucket_census,
    clean_stale_temporaries,
    load_buckets,
    secondary_lines,
)

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "fuzz" / "target.py"
SEEDS = ROOT / "corpus" / "differential"
_STATUS = re.compile(r"^#(\d+)\s")
_FIELDS = {name: re.compile(rf"\b{name}: (\d+)") for name in ("cov", "corp", "rss")}
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen
    log: Path
    execs: int = 0
    cov: int = 0
    corpus: int = 0
    rss_first: int | None = None
    rss: int = 0
    done: bool = False
    lines: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        m = _STATUS.match(line)
        if m:
            self.execs = max(self.execs, int(m.group(1)))
            f = {k: r.search(line) for k, r in _FIELDS.items()}
            if f["cov"]:
                self.cov = max(self.cov, int(f["cov"].group(1)))
            if f["corp"]:
                self.corpus = int(f["corp"].group(1))
            if f["rss"]:
                self.rss = int(f["rss"].group(1))
                if self.rss_first is None:
                    self.rss_first = self.rss
        d = _DONE.match(line)
        if d:
            self.execs = max(self.execs, int(d.group(1)))
            self.done = True


@dataclass
class Options:
    variant: str = "v1"
    seconds: int | None = None
    jobs: int = 1
    config: str = ""
    corpus: Path = Path("out/corpus")
    crashes: Path = Path("out/crashes")
    strict: bool = False
    stop_first: bool = False
    seeds: bool = True
    #: what Atheris instruments: "model" (the whole model), "walker" (the variants only), "c"
    #: (no Python: the C worlds' edges) or "auto" (c when both worlds are C worlds, else model;
    #: fuzz/target.py)
    instrument: str = "auto"
    libfuzzer: list[str] = field(default_factory=list)
    progress_every: float = 5.0


def write_seeds(dest: Path) -> int:
    """Binary forms of the readable seeds in corpus/differential, for libFuzzer."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for p in sorted(SEEDS.glob("*.ops")):
        atomic_write(dest / (p.stem + ".bin"), codec.encode(load_input(p)))
        n += 1
    return n


_SHA1_NAME = re.compile(r"^[0-9a-f]{40}$")

#: Runs each worker: ask Linux to SIGKILL it when the campaign process dies (even by SIGKILL),
#: then exec the target.  Workers live in their own session (Ctrl-C reaches the campaign, which
#: stops them in order), so without this they would outlive a killed campaign and keep writing
#: into its folders while a restarted campaign runs.
_WORKER_SHIM = """\
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None).prctl(1, ctypes.c_ulong(signal.SIGKILL))   # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:                                       # died before prctl
    sys.exit(1)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def repair_corpus(corpus: Path) -> list[Path]:
    """Remove the files a killed libFuzzer left half-written in its corpus folder.

    libFuzzer names every corpus file by the SHA-1 of its contents and writes it in place
    (fopen, fwrite, fclose), so a worker killed in the middle leaves a file whose name is not
    the hash of what it holds.  Such a file would still decode (any bytes do), but it is not
    the input libFuzzer meant to keep.  Returns the files removed."""
    removed = []
    for p in sorted(Path(corpus).iterdir()):
        if _SHA1_NAME.match(p.name) and p.is_file():
            try:
                if hashlib.sha1(p.read_bytes()).hexdigest() != p.name:
                    p.unlink()
                    removed.append(p)
            except OSError:
                pass
    return removed


def _stop_on_signals():
    """SIGINT and SIGTERM stop a campaign the way Ctrl-C does: workers stopped, the summary
    printed, buckets and counts flushed.  Explicitly, because a campaign started in the
    background by a script inherits SIGINT ignored (POSIX), and Python's default for SIGTERM
    is to die without stopping the workers' libFuzzer cleanly.  Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in old.items()]


def run_campaign(opt: Options, out=None) -> int:
    out = out or sys.stdout
    opt.corpus.mkdir(parents=True, exist_ok=True)
    opt.crashes.mkdir(parents=True, exist_ok=True)
    logs = opt.crashes / "logs"
    logs.mkdir(exist_ok=True)
    dirs = [str(opt.corpus)]
    seed_dir = opt.crashes.parent / "seeds"
    stale = clean_stale_temporaries(opt.crashes) + clean_stale_temporaries(seed_dir, 1)
    partial = repair_corpus(opt.corpus)
    if stale or partial:
        print(f"campaign: an earlier run was interrupted; removed {len(stale)} temporary "
              f"file(s) of its writes and {len(partial)} half-written corpus file(s)",
              file=out, flush=True)
    if opt.seeds:
        write_seeds(seed_dir)
        dirs.append(str(seed_dir))
    env = dict(os.environ, IOPGFUZZ_VARIANT=opt.variant, IOPGFUZZ_CRASHES=str(opt.crashes),
               IOPGFUZZ_CONFIG=opt.config, IOPGFUZZ_STRICT="1" if opt.strict else "0",
               IOPGFUZZ_STOP_FIRST="1" if opt.stop_first else "0",
               IOPGFUZZ_INSTRUMENT=opt.instrument,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    flags = ["-max_len=2048", "-print_final_stats=1", "-rss_limit_mb=4096", "-timeout=10",
             f"-artifact_prefix={opt.crashes}/"]
    if opt.seconds is not None:
        flags.append(f"-max_total_time={opt.seconds}")
    flags += opt.libfuzzer
    buckets_before = {b["signature"] for b in load_buckets(opt.crashes)}
    start = time.time()
    workers: list[Worker] = []
    for i in range(opt.jobs):
        log = logs / f"worker-{i}.log"
        cmd = [sys.executable, str(TARGET), f"-seed={int(start) % 100000 + i}", *flags, *dirs]
        if sys.platform.startswith("linux"):
            cmd = [sys.executable, "-c", _WORKER_SHIM, str(os.getpid()), *cmd[1:]]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True)
        w = Worker(i, proc, log)
        workers.append(w)
        threading.Thread(target=_pump, args=(w,), daemon=True).start()
    print(f"campaign: variant {opt.variant}, {opt.jobs} worker(s), corpus {opt.corpus}, "
          f"buckets in {opt.crashes}" + (f", {opt.seconds} s" if opt.seconds else
                                         ", until interrupted (Ctrl-C)"), file=out, flush=True)
    interrupted = False
    next_report = opt.progress_every
    restore = _stop_on_signals()
    try:
        while any(w.proc.poll() is None for w in workers):
            time.sleep(0.5)
            elapsed = time.time() - start
            if elapsed >= next_report:
                _progress(workers, opt, start, out)
                # every few seconds at first, then every half minute
                next_report = elapsed + (opt.progress_every if elapsed < 60 else 30)
    except KeyboardInterrupt:
        interrupted = True
        for w in workers:
            if w.proc.poll() is None:
                os.killpg(w.proc.pid, signal.SIGINT)
        for w in workers:
            try:
                w.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(w.proc.pid, signal.SIGKILL)
    finally:
        restore()
    seconds = time.time() - start
    time.sleep(0.2)
    summary = _summary(workers, opt, start, seconds, buckets_before)
    atomic_write(opt.crashes / "summary.json", json.dumps(summary, indent=1))
    _table(summary, out)
    failed = [w for w in workers if w.proc.returncode not in (0, None) and not interrupted
              and not opt.stop_first]
    for w in failed:
        print(f"worker {w.index} exited with {w.proc.returncode}; last lines of {w.log}:",
              file=out)
        print("\n".join(w.lines[-15:]), file=out)
    # correctness buckets fail the campaign (efficiency ones with --strict); upstream ones,
    # the reference's own, never do
    crash_kinds = [b for b in summary["buckets"] if is_crash(b["kind"], opt.strict)]
    if failed:
        return 2
    return 1 if crash_kinds else 0


def _pump(w: Worker) -> None:
    with open(w.log, "w", buffering=1) as log:     # line by line: a killed campaign keeps it
        for line in w.proc.stdout:
            log.write(line)
            w.feed(line)
            if line.startswith(("NEW BUCKET", "Traceback", "===", "==")) or "Error" in line:
                w.lines.append(line.rstrip())
            w.lines = w.lines[-50:]


def _progress(workers: list[Worker], opt: Options, start: float, out) -> None:
    t = time.time() - start
    execs = sum(w.execs for w in workers)
    buckets = load_buckets(opt.crashes)
    kinds = sorted({b["kind"] for b in buckets})
    print(f"[{t:6.0f}s] execs {execs:>9}  exec/s {execs / max(t, 1e-9):7.0f}  "
          f"cov {max((w.cov for w in workers), default=0):>5}  "
          f"corpus {max((w.corpus for w in workers), default=0):>5}  "
          f"buckets {len(buckets):>3} ({', '.join(kinds) or '-'})", file=out, flush=True)


def _summary(workers, opt, start, seconds, before) -> dict:
    execs = sum(w.execs for w in workers)
    buckets = []
    for b in load_buckets(opt.crashes):
        first = b["first_seen"]
        buckets.append({"signature": b["signature"], "kind": b["kind"], "count": b["count"],
                        "first_seen_s": None if first is None else round(first - start, 2),
                        "reproducer": b["reproducer"], "new": b["signature"] not in before,
                        "secondaries": [{"signature": x["signature"], "count": x["count"]}
                                        for x in b["secondaries"]]})
    buckets.sort(key=lambda b: (b["first_seen_s"] is None, b["first_seen_s"] or 0))
    first_by_kind: dict[str, float] = {}
    for b in buckets:
        if b["first_seen_s"] is not None and b["first_seen_s"] >= 0:
            first_by_kind.setdefault(b["kind"], b["first_seen_s"])
    return {"variant": opt.variant, "jobs": opt.jobs, "execs": execs,
            "exec_per_sec": round(execs / seconds, 1) if seconds else 0.0,
            "seconds": round(seconds, 1), "first_by_kind": first_by_kind,
            "rss_mb": {"start": [w.rss_first for w in workers], "end": [w.rss for w in workers]},
            "buckets": buckets}


def _table(summary: dict, out) -> None:
    print(f"\n{summary['execs']} execs in {summary['seconds']} s "
          f"({summary['exec_per_sec']} exec/s over {summary['jobs']} worker(s)); "
          f"{bucket_census(summary['buckets'])}", file=out)
    if summary["buckets"]:
        print(f"{'kind':<22} {'count':>7} {'first(s)':>9}  signature", file=out)
        for b in summary["buckets"]:
            first = "-" if b["first_seen_s"] is None else f"{b['first_seen_s']:.1f}"
            print(f"{b['kind']:<22} {b['count']:>7} {first:>9}  {b['signature']}", file=out)
            print(f"{'':<42}{b['reproducer']}", file=out)
            for line in secondary_lines(b, 42):
                print(line, file=out)
    out.flush()

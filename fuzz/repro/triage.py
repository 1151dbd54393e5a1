"""Buckets on disk: one folder per root cause, named by its primary finding's signature.

    <crashes>/<kind>/<signature-hash>/input.bin   the input as found (binary form)
                                     /input.ops   the same input as readable text
                                     /report.txt  signature, variant, versions, the run's
                                                  secondary findings, trace
    <crashes>/.counts/<worker>.json             {signature: [count, first_seen_unix]}
    <crashes>/.counts/secondary/<worker>.json   {primary signature:
                                                  {secondary signature: [count, first_seen_unix]}}

One bucket per root cause (`group_findings`): of each run, the first finding of each category
(correctness, efficiency, upstream), by op index and then in the oracles' order, is the
*primary*; the later findings of the same category in that run are its *secondaries* (a lost
error that makes a stale read that makes an out-of-bounds access is one bucket).  Only
primaries open buckets and are counted in `.counts/<worker>.json`; secondaries are listed in the
report of the bucket that opened, and counted per primary in `.counts/secondary/`, so that every
secondary ever seen shows up in `triage` and in the campaign's table.  Counts files written
before this (every finding counted under its own signature) read the same way; readers that
know nothing of secondaries never look into the subfolder.

Crash safety (a worker may be killed with SIGKILL at any instruction):

* A bucket is written whole into a hidden temporary folder `<kind>/.<hash>.<pid>.tmp/` and then
  renamed to `<kind>/<hash>/` in one step, so a bucket folder either does not exist or holds all
  three files.  When two workers open the same bucket at once, the first rename wins and the
  other worker's folder is thrown away; nothing is ever merged into a bucket or overwritten.
* Every other file (counts, summary.json, seeds, outputs of minimize/export) is written by
  `atomic_write`: a hidden temporary file in the same folder, fsync, rename, fsync the folder.
* What a killed writer leaves behind is only hidden `.*.<pid>.tmp` names.  Every reader ignores
  them, and `clean_stale_temporaries` (run at the start of a campaign) removes those whose
  process is gone.
* A bucket folder without `report.txt` (from an older iopgfuzz, which wrote the files one by
  one, or from damage) is ignored as incomplete and rewritten the next time its signature is
  hit.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..judge.findings import ALL_KINDS, EFFICIENCY_KINDS, UPSTREAM_KINDS, Finding, signature_hash
from ..lang import codec
from ..lang.ops import format_scenario

VERSION = "iopgfuzz 0.1.0"
BUCKET_FILES = ("input.bin", "input.ops", "report.txt")
#: The first lines of report.txt, in this order.
REPORT_HEADER = ("signature", "kind", "variant")
_TEMP = re.compile(r"^\..*\.(\d+)\.(tmp|old)$")
#: Under `.counts/`: the secondaries' counts, per primary signature.
SECONDARY_DIR = "secondary"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `path` so that it is always either the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(tmp, data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise type(e)(e.errno, e.strerror, str(path)) from None     # name the file, not tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(root: Path, depth: int = 3) -> list[Path]:
    """Remove the hidden `.*.<pid>.tmp` files and folders that killed writers left under
    `root` (down to `depth` levels), when process <pid> is gone.  Returns what was removed."""
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed

    def walk(d: Path, level: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for p in entries:
            m = _TEMP.match(p.name)
            if m and not _pid_alive(int(m.group(1))):
                try:
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
                    removed.append(p)
                except OSError:
                    pass
            elif level < depth and p.is_dir() and not p.is_symlink():
                walk(p, level + 1)

    walk(root, 1)
    return removed


#: Findings of these categories never explain each other: each has its own primary per run.
CORRECTNESS, EFFICIENCY, UPSTREAM = "correctness", "efficiency", "upstream"
#: The reference's own misbehaviour (fuzz.judge.findings.UPSTREAM_KINDS) is a category of its own,
#: so that it neither hides nor is hidden by the variant's.


def category(kind: str) -> str:
    if kind in EFFICIENCY_KINDS:
        return EFFICIENCY
    return UPSTREAM if kind in UPSTREAM_KINDS else CORRECTNESS


@dataclass
class Group:
    """One root cause of a run: the primary finding and the later findings it explains."""

    primary: Finding
    secondaries: list[Finding] = field(default_factory=list)


def group_findings(findings: list[Finding]) -> list[Group]:
    """The findings of one run, one group per category: the first finding of the category (by
    op index, then the order the oracles reported them in) is the primary, every later one of
    the same category is its secondary.  Groups come in the order of their primaries."""
    order = sorted(range(len(findings)), key=lambda i: (findings[i].op_index, i))
    groups: dict[str, Group] = {}
    for i in order:
        f = findings[i]
        g = groups.get(category(f.kind))
        if g is None:
            groups[category(f.kind)] = Group(f)
        else:
            g.secondaries.append(f)
    return list(groups.values())


def secondary_of(findings: list[Finding]) -> list[Finding | None]:
    """Per finding (same order): None for a primary, else the primary it is a secondary of."""
    out: dict[int, Finding | None] = {}
    for g in group_findings(findings):
        out[id(g.primary)] = None
        for s in g.secondaries:
            out[id(s)] = g.primary
    return [out[id(f)] for f in findings]


def bucket_dir(root: Path, f: Finding) -> Path:
    return root / f.kind / signature_hash(f.signature)


def versions() -> str:
    import numpy
    return (f"{VERSION}; Python {platform.python_version()}; NumPy {numpy.__version__}; "
            f"{platform.system()} {platform.machine()}")


class Triage:
    """Per-process bucket bookkeeping; `record` returns the primaries that opened new buckets."""

    def __init__(self, root: Path, worker: str | None = None):
        self.root = Path(root)
        # the start time keeps a later worker that reuses the PID from overwriting the counts
        self.worker = worker or f"{platform.node()}-{os.getpid()}-{int(time.time())}"
        self.counts: dict[str, list] = {}
        self.secondary: dict[str, dict[str, list]] = {}
        self.known = {p.name for p in self.root.glob("*/*")
                      if not p.name.startswith(".") and (p / "report.txt").exists()}
        self._last_flush = 0.0

    def record(self, data: bytes, res, trace=None) -> list[Finding]:
        """`trace` is the report's trace text, or a function giving it (called only when a new
        bucket is written, so known findings cost no formatting)."""
        new = []
        now = time.time()
        for g in group_findings(res.findings):
            f = g.primary
            self.counts.setdefault(f.signature, [0, now])[0] += 1
            if g.secondaries:
                per = self.secondary.setdefault(f.signature, {})
                for s in g.secondaries:
                    per.setdefault(s.signature, [0, now])[0] += 1
            h = signature_hash(f.signature)
            if h in self.known or (bucket_dir(self.root, f) / "report.txt").exists():
                self.known.add(h)           # (another worker may have opened it meanwhile)
                continue
            self.known.add(h)
            if self.write_bucket(data, res, f, trace, g.secondaries) is not None:
                new.append(f)
        if time.time() - self._last_flush > 5 or new:
            self.flush()
        return new

    def write_bucket(self, data: bytes, res, f: Finding, trace,
                     secondaries: list[Finding] = ()) -> Path | None:
        """Write the bucket of the primary `f` (with the run's `secondaries` of it) in one
        step.  Returns its folder, or None when another worker's bucket for the same signature
        got there first."""
        d = bucket_dir(self.root, f)
        sc = res.scenario
        text = format_scenario(sc, {f.op_index: f"{f.kind}: {f.message}"}
                               if f.op_index >= 0 else None)
        report = [f"signature: {f.signature}", f"kind: {f.kind}", f"variant: {res.variant}",
                  f"op: {f.op_index}", f"message: {f.message}", f"versions: {versions()}",
                  f"found: {time.strftime('%Y-%m-%d %H:%M:%S')}",
                  f"replay: python -m fuzz replay {d / 'input.ops'} --variant {res.variant}", ""]
        if secondaries:
            report.append(f"secondary findings of this run ({len(secondaries)}; the primary "
                          "explains them, they open no bucket; `python -m fuzz triage` counts "
                          "them over all runs):")
            report += [f"  {s.signature}  (op {s.op_index}): {s.message}" for s in secondaries]
            report.append("")
        if callable(trace):
            trace = trace()
        if trace:
            report.append(trace)
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = d.with_name(f".{d.name}.{os.getpid()}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            _write_synced(tmp / "input.bin", data if data else codec.encode(sc))
            _write_synced(tmp / "input.ops", text.encode())
            _write_synced(tmp / "report.txt", "\n".join(report).encode())
            _fsync_dir(tmp)
            if d.exists() and not (d / "report.txt").exists():
                _discard_incomplete(d)
            try:
                os.rename(tmp, d)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                return None                 # another worker's bucket won the race
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(d.parent)
        return d

    def flush(self) -> None:
        self._last_flush = time.time()
        if self.secondary:              # first: a kill in between loses no secondary's count
            atomic_write(self.root / ".counts" / SECONDARY_DIR / f"{self.worker}.json",
                         json.dumps(self.secondary))
        atomic_write(self.root / ".counts" / f"{self.worker}.json", json.dumps(self.counts))


def _discard_incomplete(d: Path) -> None:
    """Move an incomplete bucket folder out of the way (one rename), then delete it."""
    old = d.with_name(f".{d.name}.{os.getpid()}.old")
    try:
        os.rename(d, old)
    except OSError:
        return
    shutil.rmtree(old, ignore_errors=True)


# --- reading buckets ---------------------------------------------------------------------------

@dataclass
class Problem:
    """Something wrong with a bucket on disk: `path` (and `line`) and what."""

    path: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else \
            f"{self.path}: {self.message}"


def read_report(path: Path) -> tuple[dict[str, str] | None, Problem | None]:
    """The header fields of a report.txt, or the problem with it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, Problem(path, f"cannot read: {e.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, Problem(path, f"not UTF-8 text (offset {e.start}): a damaged report",
                             raw.count(b"\n", 0, e.start) + 1)
    lines = text.splitlines()
    fields = {}
    for i, name in enumerate(REPORT_HEADER):
        line = lines[i] if i < len(lines) else ""
        key, sep, value = line.partition(": ")
        if key != name or not sep or not value.strip():
            got = f"{line[:60]!r}" if i < len(lines) else "the end of the file"
            return None, Problem(path, f"expected '{name}: ...', found {got}: a damaged or "
                                       "truncated report", i + 1)
        fields[name] = value.strip()
    for line in lines[len(REPORT_HEADER):9]:
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, value)
    return fields, None


def check_bucket(d: Path) -> Problem | None:
    """Why the bucket folder `d` is not complete and consistent (None when it is)."""
    d = Path(d)
    report = d / "report.txt"
    if not report.exists():
        return Problem(d, "incomplete bucket: no report.txt (an interrupted write; the next "
                          "hit of its signature writes the bucket again)")
    fields, problem = read_report(report)
    if problem:
        return problem
    if signature_hash(fields["signature"]) != d.name:
        return Problem(report, f"signature {fields['signature']!r} belongs in a folder named "
                               f"{signature_hash(fields['signature'])}, not {d.name}", 1)
    if fields["kind"] != fields["signature"].split("|")[0] or fields["kind"] != d.parent.name:
        return Problem(report, f"kind {fields['kind']!r} does not match the signature "
                               f"{fields['signature']!r} and the folder {d.parent.name!r}", 2)
    for name in ("input.bin", "input.ops"):
        if not (d / name).is_file():
            return Problem(d, f"the bucket has report.txt but no {name}")
    return None


@dataclass
class Scan:
    """What a crashes folder holds: complete buckets, incomplete ones (ignored), problems."""

    buckets: list[dict] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def scan_buckets(root: Path) -> Scan:
    """Every bucket of `root` with its total count over all workers and its secondary
    signatures (`secondaries`: [{signature, count, first_seen}], most counted first).  Hidden
    names (the temporaries of interrupted writes) are not buckets; a folder without report.txt
    is incomplete and ignored; a bucket that is damaged in any other way is a problem."""
    root = Path(root)
    scan = Scan()
    totals: dict[str, list] = {}
    for p in sorted((root / ".counts").glob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            for sig, (n, first) in doc.items():
                t = totals.setdefault(sig, [0, first])
                t[0] += int(n)
                t[1] = min(t[1], first)
        except (ValueError, TypeError, AttributeError, OSError) as e:
            scan.problems.append(Problem(p, f"unreadable counts file ({e}); its counts are "
                                            "left out"))
    secondary: dict[str, dict[str, list]] = {}
    for p in sorted((root / ".counts" / SECONDARY_DIR).glob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            rows = [(prim, sig, int(n), first) for prim, per in doc.items()
                    for sig, (n, first) in per.items()]
        except (ValueError, TypeError, AttributeError, OSError) as e:
            scan.problems.append(Problem(p, f"unreadable counts file of secondary findings "
                                            f"({e}); its counts are left out"))
            continue
        for prim, sig, n, first in rows:
            t = secondary.setdefault(prim, {}).setdefault(sig, [0, first])
            t[0] += n
            t[1] = min(t[1], first)
    for kind in sorted(ALL_KINDS):
        for d in sorted((root / kind).glob("*")):
            if d.name.startswith(".") or not d.is_dir():
                continue
            if not (d / "report.txt").exists():
                scan.incomplete.append(d)
                continue
            problem = check_bucket(d)
            if problem:
                scan.problems.append(problem)
                continue
            fields, _ = read_report(d / "report.txt")
            sig = fields["signature"]
            n, first = totals.get(sig, [1, None])
            secs = sorted(secondary.get(sig, {}).items(), key=lambda kv: (-kv[1][0], kv[0]))
            scan.buckets.append({"signature": sig, "kind": fields["kind"], "count": n,
                                 "first_seen": first, "reproducer": str(d / "input.ops"),
                                 "variant": fields["variant"],
                                 "secondaries": [{"signature": s2, "count": c2, "first_seen": f2}
                                                 for s2, (c2, f2) in secs]})
    return scan


def load_buckets(root: Path) -> list[dict]:
    """Every complete bucket with its total count over all workers (and its secondaries)."""
    return scan_buckets(root).buckets


def secondary_lines(bucket: dict, indent: int) -> list[str]:
    """The table rows of a bucket's secondary signatures, for `triage` and the campaign."""
    return [f"{'':<{indent}}+ secondary {s['count']:>6}x  {s['signature']}"
            for s in bucket.get("secondaries", ())]



def bucket_census(buckets: list[dict]) -> str:
    """"N bucket(s) (C correctness, E efficiency); S secondary signature(s) in them"."""
    n = {c: sum(category(b["kind"]) == c for b in buckets)
         for c in (CORRECTNESS, EFFICIENCY, UPSTREAM)}
    parts = [f"{n[CORRECTNESS]} correctness", f"{n[EFFICIENCY]} efficiency"]
    if n[UPSTREAM]:
        parts.append(f"{n[UPSTREAM]} upstream")
    secs = sum(len(b.get("secondaries", ())) for b in buckets)
    return (f"{len(buckets)} bucket(s) ({', '.join(parts)}); {secs} secondary signature(s) "
            "in them")

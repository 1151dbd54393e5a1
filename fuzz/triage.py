"""Buckets on disk: one folder per distinct finding signature.

    <crashes>/<kind>/<signature-hash>/input.bin   the input as found (binary form)
                                     /input.ops   the same input as readable text
                                     /report.txt  signature, variant, versions, trace
    <crashes>/.counts/<worker>.json             {signature: [count, first_seen_unix]}

Every file is written to a temporary name and renamed, so a killed campaign never leaves a
half-written report; a bucket whose report.txt exists is complete.  A bucket that already
exists is only counted: nothing is ever merged into it or overwritten.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from . import codec
from .findings import Finding, signature_hash
from .ops import format_scenario

VERSION = "iopgfuzz 0.1.0"


def atomic_write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def bucket_dir(root: Path, f: Finding) -> Path:
    return root / f.kind / signature_hash(f.signature)


def versions() -> str:
    import numpy
    return (f"{VERSION}; Python {platform.python_version()}; NumPy {numpy.__version__}; "
            f"{platform.system()} {platform.machine()}")


class Triage:
    """Per-process bucket bookkeeping; `record` returns the findings that opened new buckets."""

    def __init__(self, root: Path, worker: str | None = None):
        self.root = Path(root)
        self.worker = worker or f"{platform.node()}-{os.getpid()}"
        self.counts: dict[str, list] = {}
        self.known = {p.name for p in self.root.glob("*/*") if (p / "report.txt").exists()}
        self._last_flush = 0.0

    def record(self, data: bytes, res, trace=None) -> list[Finding]:
        """`trace` is the report's trace text, or a function giving it (called only when a new
        bucket is written, so known findings cost no formatting)."""
        new = []
        for f in res.findings:
            c = self.counts.setdefault(f.signature, [0, time.time()])
            c[0] += 1
            h = signature_hash(f.signature)
            if h in self.known or (bucket_dir(self.root, f) / "report.txt").exists():
                self.known.add(h)           # (another worker may have opened it meanwhile)
                continue
            self.known.add(h)
            self.write_bucket(data, res, f, trace)
            new.append(f)
        if time.time() - self._last_flush > 5 or new:
            self.flush()
        return new

    def write_bucket(self, data: bytes, res, f: Finding, trace: str | None) -> Path:
        d = bucket_dir(self.root, f)
        sc = res.scenario
        text = format_scenario(sc, {f.op_index: f"{f.kind}: {f.message}"}
                               if f.op_index >= 0 else None)
        atomic_write(d / "input.bin", data if data else codec.encode(sc))
        atomic_write(d / "input.ops", text)
        report = [f"signature: {f.signature}", f"kind: {f.kind}", f"variant: {res.variant}",
                  f"op: {f.op_index}", f"message: {f.message}", f"versions: {versions()}",
                  f"found: {time.strftime('%Y-%m-%d %H:%M:%S')}",
                  f"replay: python -m fuzz replay {d / 'input.ops'} --variant {res.variant}", ""]
        if callable(trace):
            trace = trace()
        if trace:
            report.append(trace)
        atomic_write(d / "report.txt", "\n".join(report))     # written last: marks complete
        return d

    def flush(self) -> None:
        self._last_flush = time.time()
        atomic_write(self.root / ".counts" / f"{self.worker}.json", json.dumps(self.counts))


def load_buckets(root: Path) -> list[dict]:
    """Every complete bucket with its total count over all workers."""
    root = Path(root)
    totals: dict[str, list] = {}
    for p in sorted((root / ".counts").glob("*.json")):
        try:
            for sig, (n, first) in json.loads(p.read_text()).items():
                t = totals.setdefault(sig, [0, first])
                t[0] += n
                t[1] = min(t[1], first)
        except (ValueError, OSError) as e:
            print(f"warning: ignoring unreadable counts file {p}: {e}", file=sys.stderr)
    out = []
    for d in sorted(root.glob("*/*")):
        report = d / "report.txt"
        if not report.exists():
            continue
        fields = dict(line.split(": ", 1) for line in report.read_text().splitlines()[:8]
                      if ": " in line)
        sig = fields.get("signature", "?")
        n, first = totals.get(sig, [1, None])
        out.append({"signature": sig, "kind": fields.get("kind", "?"), "count": n,
                    "first_seen": first, "reproducer": str(d / "input.ops"),
                    "variant": fields.get("variant", "?")})
    return out

"""A campaign stopped by a signal stops as Ctrl-C stops it: workers stopped, the summary
printed and written, exit 0 -- for SIGTERM (what `kill` and service managers send) and for
SIGINT in a campaign started in the background by a script, which inherits SIGINT ignored."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path: Path, ignore_sigint: bool) -> subprocess.Popen:
    def preexec():
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return subprocess.Popen(
        [sys.executable, "-m", "fuzz", "campaign", "--variant", "fixed", "--time", "300",
         "--jobs", "1", "--corpus", str(tmp_path / "corpus"), "--crashes",
         str(tmp_path / "crashes")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec)


def _wait_for_progress(proc: subprocess.Popen, tmp_path: Path) -> None:
    """Until the worker has run inputs (its log has libFuzzer's INITED line)."""
    log = tmp_path / "crashes" / "logs" / "worker-0.log"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and "INITED" in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.5)
    pytest.fail("the worker did not start within 120 s")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
@pytest.mark.parametrize(("sig", "ignore_sigint"), [(signal.SIGTERM, False),
                                                     (signal.SIGINT, True)])
def test_a_signal_stops_the_campaign_cleanly(tmp_path, sig, ignore_sigint):
    proc = _start(tmp_path, ignore_sigint)
    _wait_for_progress(proc, tmp_path)
    t0 = time.time()
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert time.time() - t0 < 40                       # not the 300 s of --time
    assert " execs in " in out                         # the summary table
    summary = json.loads((tmp_path / "crashes" / "summary.json").read_text())
    assert summary["execs"] > 0

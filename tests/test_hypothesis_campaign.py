"""Hypothesis front end (fuzz/gen/strategies.py) as a CI campaign, derandomised.

* `reference` and `fixed`: no finding of any kind, efficiency included, over N_CLEAN scenarios
  each (both together stay well under a minute on the 2-core development machine).
* `v1`: the same strategies reach at least three distinct correctness kinds, and Hypothesis
  shrinks a stale read to a scenario of at most three ops.
* `python -m fuzz hypothesis`: a short time-bounded run records times to first findings.

The profile `iopgfuzz-ci` (tests/conftest.py) fixes the examples, so every run sees the same
scenarios and these tests cannot flake.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, find, given, settings

from fuzz.gen.generate import geometry_of
from fuzz.gen.strategies import configs, ops_for, scenarios
from fuzz.judge.findings import CORRECTNESS_KINDS, STALE_READ, UPSTREAM
from fuzz.lang.ops import format_scenario, parse_scenario
from fuzz.run.executor import run_scenario
from model.variants import get_variant

#: Examples per clean variant: ~12 ms each (generation ~7 ms, execution ~5 ms), so the two
#: clean tests take about 2 x 12 s here; see docs/campaigns.md.
N_CLEAN = 1000
#: Examples for the v1 kind census (v1 reaches five correctness kinds within ~50).
N_V1 = 200

CI = settings.get_profile("iopgfuzz-ci")


def _describe(res) -> str:
    lines = [f"{f.kind} at op {f.op_index}: {f.message}  [{f.signature}]" for f in res.findings]
    return "\n".join(lines) + "\n\nscenario (replay with python -m fuzz replay FILE --variant " \
        f"{res.variant}):\n{format_scenario(res.scenario)}"


@pytest.mark.parametrize("variant", ["reference", "fixed"])
def test_clean_variants_have_no_findings(variant):
    v = get_variant(variant)

    @settings(CI, max_examples=N_CLEAN)
    @given(scenarios())
    def check(sc):
        res = run_scenario(sc, v)
        assert res.config_error is None, format_scenario(sc)
        # upstream's own misbehaviour (the reference's finding) is no finding of the variant
        judged = [f for f in res.findings if f.kind != UPSTREAM]
        assert not judged, f"{variant}: {len(judged)} finding(s)\n{_describe(res)}"

    check()


def test_v1_reaches_several_correctness_kinds():
    v = get_variant("v1")
    kinds: dict[str, str] = {}

    @settings(CI, max_examples=N_V1)
    @given(scenarios())
    def census(sc):
        for f in run_scenario(sc, v).findings:
            kinds.setdefault(f.kind, f.signature)

    census()
    correctness = sorted(k for k in kinds if k in CORRECTNESS_KINDS)
    print("v1 kinds:", ", ".join(f"{k} ({kinds[k]})" for k in sorted(kinds)))
    assert len(correctness) >= 3, f"only {correctness} in {N_V1} examples"
    assert "model-error" not in kinds, kinds["model-error"]


def test_hypothesis_shrinks_a_v1_stale_read():
    v = get_variant("v1")

    def stale(sc) -> bool:
        return any(f.kind == STALE_READ for f in run_scenario(sc, v).findings)

    shrunk = find(scenarios(), stale,
                  settings=settings(CI, max_examples=2000,
                                    suppress_health_check=list(HealthCheck)))
    text = format_scenario(shrunk)
    print("shrunk v1 stale read:\n" + text)
    assert stale(shrunk)
    assert len(shrunk.ops) <= 3, text
    assert parse_scenario(text) == shrunk                     # a readable, replayable .ops


@settings(CI, max_examples=100)
@given(configs())
def test_configs_are_accepted(config):
    assert geometry_of(config) is not None


@settings(CI, max_examples=100)
@given(scenarios(max_ops=5))
def test_scenarios_round_trip_and_respect_max_ops(sc):
    assert len(sc.ops) <= 5
    assert parse_scenario(format_scenario(sc)) == sc


def test_ops_for_refuses_a_rejected_config():
    from model import Config

    bad = Config(fmt="arm32-s1", granule=1 << 16)
    assert geometry_of(bad) is None
    with pytest.raises(ValueError, match="not accepted"):
        ops_for(bad)


def test_time_bounded_campaign_records_first_findings(tmp_path, capsys):
    from fuzz.cli import main

    out = tmp_path / "h.json"
    code = main(["hypothesis", "--variant", "v1", "--time", "3", "--seed", "1", "-o", str(out)])
    assert code == 1
    s = json.loads(out.read_text())
    assert s["engine"] == "hypothesis" and s["variant"] == "v1" and s["execs"] > 0
    assert s["first_by_kind"], s
    assert all(0 <= t <= s["seconds"] for t in s["first_by_kind"].values())
    for b in s["buckets"]:
        parse_scenario(b["reproducer"])                       # every reproducer replays
    printed = capsys.readouterr().out
    assert "first(s)" in printed and "Hypothesis only" in printed

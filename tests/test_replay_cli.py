"""`python -m fuzz replay`: the JSON contract of design §6 and the exit codes."""

import json
from pathlib import Path

from fuzz.cli import main

ROOT = Path(__file__).resolve().parent.parent
STALE = str(ROOT / "crashes/v1/concat-pgd-page-boundary.ops")
RESYNC = str(ROOT / "crashes/v1/resync.ops")
SITES = {"alloc", "install", "table", "leaf", "sync_map", "unmap"}


def test_json_has_every_field_of_the_contract(capsys):
    assert main(["replay", STALE, "--variant", "v1", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {"variant", "config", "geometry", "ops", "findings", "stats"} <= set(doc)
    assert doc["variant"] == "v1"
    # S2, 4K, ias 40: 3 levels from L1, PGD of 2^10 entries (two concatenated pages)
    assert doc["geometry"] == {"levels": 3, "start_level": 1, "pgd_bits": 10,
                               "bits_per_level": 9, "pgd_entries": 1024}
    assert [op["index"] for op in doc["ops"]] == [0, 1]
    assert doc["ops"][0]["text"] == "map 0x7fc0000000 0x7fc0000000 2G"
    for op in doc["ops"]:
        assert {"reference", "variant"} <= set(op)
    for f in doc["findings"]:
        assert {"kind", "signature", "op_index", "message", "detail"} <= set(f)
    assert {f["kind"] for f in doc["findings"]} == {"stale-read"}
    for world in ("reference", "variant"):
        s = doc["stats"][world]
        assert {"cmo_calls", "lines_cleaned", "warns", "by_site"} <= set(s)
        assert set(s["by_site"]) == SITES
        assert s["cmo_calls"] == sum(v["calls"] for v in s["by_site"].values())
        assert s["lines_cleaned"] == sum(v["lines"] for v in s["by_site"].values())
    # two 1G blocks, one leaf clean per map_pages call (one per PGD page): 2 calls, 2 lines
    assert doc["stats"]["reference"]["by_site"]["leaf"] == {"calls": 2, "lines": 2}
    # v1 cleans only PGD entry 511: one call, one line
    assert doc["stats"]["variant"]["by_site"]["sync_map"] == {"calls": 1, "lines": 1}


def test_exit_codes(capsys, tmp_path):
    assert main(["replay", STALE, "--variant", "fixed"]) == 0
    assert main(["replay", STALE, "--variant", "v1"]) == 1
    # efficiency notes alone: 0, or 1 with --strict
    assert main(["replay", RESYNC, "--variant", "v1"]) == 0
    assert main(["replay", RESYNC, "--variant", "v1", "--strict"]) == 1
    bad = tmp_path / "bad.ops"
    bad.write_text("# iopgfuzz ops v1\nmap 1 2\n")
    assert main(["replay", str(bad)]) == 2
    assert "bad.ops:2:" in capsys.readouterr().err


def test_trace_shows_both_walks_of_a_stale_read(capsys):
    main(["replay", STALE, "--variant", "v1"])
    out = capsys.readouterr().out
    assert "SMMU mem: L1[512]=0x0000000000000000 => fault=translation@L1" in out
    assert "CPU  cpu: L1[512]=0x00000080000006d5 => oa=0x8000000000" in out

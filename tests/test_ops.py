"""The `.ops` language (design §4): what parses to what, text round trips, and errors that name
the source, the line and the problem (design §8: "corrupt or truncated `.ops` files give a clear
error naming the line")."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import cli
from fuzz.lang.ops import (
    Evict,
    Fail,
    Map,
    MapNosync,
    MapSg,
    OpsSyntaxError,
    PtIovaToPhys,
    PtMapPages,
    PtSyncMap,
    PtUnmapPages,
    Scenario,
    Segment,
    Smmu,
    Sync,
    Unmap,
    format_scenario,
    parse_scenario,
)
from model import Config
from model.config import FORMATS, PROT_LETTERS, QUIRK_BITS
from model.failpoints import SITES

V = "# iopgfuzz ops v1"
K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40
U64 = (1 << 64) - 1
R, W = PROT_LETTERS["r"], PROT_LETTERS["w"]
EIO, ENOMEM = 5, 12


# --- what the language means (design §4) ----------------------------------------------------------

def test_design_example_parses_to_the_ops_it_names():
    sc = parse_scenario(
        f"{V}\n"
        "config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=none line=64 concat=mandatory "
        "enoent_bug=1\n"
        "map 0x40000000 0x80000000 2M prot=rw      # iommu_map\n")
    assert sc.config == Config(fmt="arm64-s1", granule=4 * K, ias=48, oas=48, quirks=0,
                               line=64, concat="mandatory", enoent_bug=True)
    assert sc.ops == (Map(0x40000000, 0x80000000, 2 * M, R | W),)


def test_numbers_suffixes_defaults_comments_and_blank_lines():
    sc = parse_scenario(
        f"\n\n  {V}\n"          # blank lines before the version line are allowed
        "# a comment line\n"
        "\n"
        "map 4096 0x1000 1K\n"                      # decimal, hex, K
        "map_nosync 0x0 0x0 3M prot=r\n"
        "sync 0x200000 1G   # trailing comment\n"
        "unmap 0 2T\n"
        "map_sg 0x1000 0x2000+4K p2p:0x3000+0x1000 0x4000+8K prot=none\n"
        "pt.map_pages 0x0 0x0 4K 512 prot=wr\n"
        "pt.unmap_pages 0x0 4K 3\n"
        "pt.sync_map 0x0 4K\n"
        "pt.iova_to_phys 0xffffffffffffffff\n"
        "smmu 0x1234\n"
        "evict all\n"
        "evict 0x1000\n"
        "fail alloc\n"
        "fail sync_map nth=3 err=-ENOMEM\n"
        "fail sync_map err=-5\n")
    assert sc.config == Config()        # no config line: every key at its default
    assert sc.ops == (
        Map(0x1000, 0x1000, K, R | W),                # prot defaults to rw
        MapNosync(0, 0, 3 * M, R),
        Sync(0x200000, G),
        Unmap(0, 2 * T),
        MapSg(0x1000, (Segment(0x2000, 4 * K), Segment(0x3000, 0x1000, True),
                       Segment(0x4000, 8 * K)), 0),
        PtMapPages(0, 0, 4 * K, 512, R | W),
        PtUnmapPages(0, 4 * K, 3),
        PtSyncMap(0, 4 * K),
        PtIovaToPhys(U64),
        Smmu(0x1234),
        Evict(None),
        Evict(0x1000),
        Fail("alloc", 1, None),
        Fail("sync_map", 3, -ENOMEM),
        Fail("sync_map", 1, -EIO),
    )


def test_every_config_key():
    sc = parse_scenario(
        f"{V}\nconfig fmt=arm64-s2 granule=64K ias=40 oas=44 quirks=ns,no_warn line=128 "
        "concat=legacy enoent_bug=0 coherent=1 page_size=16K pgsize=0x20010000 "
        "table_base=0x1000000000 split=1\n")
    assert sc.config == Config(fmt="arm64-s2", granule=64 * K, ias=40, oas=44,
                               quirks=QUIRK_BITS["ns"] | QUIRK_BITS["no_warn"], line=128,
                               concat="legacy", enoent_bug=False, coherent_walk=True,
                               page_size=16 * K, pgsize_bitmap=0x20010000,
                               table_base=0x1000000000, split_blk_unmap=True)
    assert sc.ops == ()


def test_every_prot_letter():
    for letter, bit in PROT_LETTERS.items():
        sc = parse_scenario(f"{V}\nmap 0 0 4K prot={letter}\n")
        assert sc.ops[0].prot == bit
    everything = "".join(PROT_LETTERS)
    sc = parse_scenario(f"{V}\nmap 0 0 4K prot={everything[::-1]}\n")
    assert sc.ops[0].prot == sum(PROT_LETTERS.values())


# --- round trips ----------------------------------------------------------------------------------

ROUND_TRIP_TEXTS = [
    # every op kind, defaults everywhere
    f"""{V}
map 0x40000000 0x80000000 2M
map_nosync 0x40200000 0x80200000 4K
sync 0x40200000 4K
map_sg 0x50000000 0x90000000+8K p2p:0xa0000000+4K 0x90003000+0x1000
unmap 0x40000000 2M
pt.map_pages 0x0 0x1000 4K 16
pt.unmap_pages 0x0 4K 16
pt.sync_map 0x0 64K
pt.iova_to_phys 0x1234
smmu 0x40000000
evict all
evict 0x40000000
fail alloc
fail sync_map
""",
    # every prot spelling, non-default fail fields, only-p2p sg, odd sizes
    f"""{V}
config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=none line=64 concat=mandatory enoent_bug=1
map 0x0 0x0 4K prot=r
map 0x1000 0x1000 4K prot=w
map 0x2000 0x2000 4K prot=c
map 0x3000 0x3000 4K prot=x
map 0x4000 0x4000 4K prot=m
map 0x5000 0x5000 4K prot=p
map 0x6000 0x6000 4K prot=rwcxmp
map_nosync 0x7000 0x7000 4K prot=none
map_sg 0x8000 p2p:0x0+4K prot=rw
pt.map_pages 0x9000 0x9000 2M 0x3 prot=pr
fail sync_map nth=2 err=-EIO
fail alloc nth=7 err=-ENOMEM
fail sync_map nth=1 err=-4095
fail alloc err=-1
sync 0xfffffffffffff000 0x1000
unmap 0x0 0xffffffffffffffff
pt.unmap_pages 0x0 1 0
sync 0 0
""",
    # every config key (non-defaults), every format and quirk spread over several scenarios
    f"""{V}
config fmt=arm64-s2 granule=16K ias=40 oas=44 quirks=ns,ttbr1,outer_wbwa,hd,s2fwb,no_warn,\
no_perms line=32 concat=legacy enoent_bug=0 coherent=1 page_size=64K pgsize=0x2004000 \
table_base=0x100000000000 split=1
map 0x0 0x0 16K
""",
    f"""{V}
config fmt=arm32-s1 granule=4K ias=32 oas=32 line=128 coherent=0 pgsize=auto split=0
smmu 0x0
""",
    f"""{V}
config fmt=arm32-s2 ias=40 oas=40 granule=64K page_size=4K table_base=0x40000000
evict all
""",
    f"""{V}
config fmt=mali quirks=none
map 0x0 0x0 1G
""",
    f"""{V}
config pgsize=0
""",
    f"{V}\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_round_trip_and_fixed_point(text):
    sc = parse_scenario(text, "rt.ops")
    canon = format_scenario(sc)
    assert parse_scenario(canon, "canon.ops") == sc
    assert format_scenario(parse_scenario(canon)) == canon        # canonical form is stable


def test_round_trip_texts_cover_every_op_kind_and_config_key():
    """Guard for the list above: every op kind, format, quirk, site and prot letter appears."""
    from fuzz.lang.ops import CONFIG_KEYS, OP_TYPES

    scs = [parse_scenario(t) for t in ROUND_TRIP_TEXTS]
    kinds = {op.kind for sc in scs for op in sc.ops}
    assert kinds == set(OP_TYPES)
    joined = "\n".join(ROUND_TRIP_TEXTS)
    for key in CONFIG_KEYS:
        assert f" {key}=" in joined, key
    for fmt in FORMATS:
        assert f"fmt={fmt}" in joined, fmt
    assert all(any(sc.config.quirks & bit for sc in scs) for bit in QUIRK_BITS.values())
    assert {op.site for sc in scs for op in sc.ops if isinstance(op, Fail)} == set(SITES)
    prot_all = 0
    for sc in scs:
        for op in sc.ops:
            prot_all |= getattr(op, "prot", 0)
    assert prot_all == sum(PROT_LETTERS.values())


def test_format_comments_are_ignored_when_parsed_back():
    sc = parse_scenario(ROUND_TRIP_TEXTS[0])
    text = format_scenario(sc, comments={0: "first", 3: "sg # with a hash"})
    assert "# first" in text
    assert parse_scenario(text) == sc


# --- Hypothesis: format -> parse is the identity on any valid scenario ----------------------------

u64s = st.one_of(
    st.integers(0, U64),
    st.sampled_from([0, 1, 9, 10, 4 * K, 2 * M, G, 512 * G, T, 1 << 48, U64, U64 - 0xfff]),
    st.integers(0, 1 << 20).map(lambda n: n << 12),
)
prots = st.integers(0, sum(PROT_LETTERS.values()))
errnos = st.one_of(st.none(), st.integers(-4095, -1), st.sampled_from([-EIO, -ENOMEM, -22]))
segments = st.builds(Segment, u64s, u64s, st.booleans())

op_strategy = st.one_of(
    st.builds(Map, u64s, u64s, u64s, prots),
    st.builds(MapNosync, u64s, u64s, u64s, prots),
    st.builds(Sync, u64s, u64s),
    st.builds(MapSg, u64s, st.lists(segments, min_size=1, max_size=5).map(tuple), prots),
    st.builds(Unmap, u64s, u64s),
    st.builds(PtMapPages, u64s, u64s, u64s, u64s, prots),
    st.builds(PtUnmapPages, u64s, u64s, u64s),
    st.builds(PtSyncMap, u64s, u64s),
    st.builds(PtIovaToPhys, u64s),
    st.builds(Smmu, u64s),
    st.builds(Evict, st.one_of(st.none(), u64s)),
    st.builds(Fail, st.sampled_from(sorted(SITES)), st.integers(1, 1 << 20), errnos),
)

quirk_masks = st.lists(st.sampled_from(sorted(QUIRK_BITS.values())), unique=True).map(sum)
granules = st.sampled_from([4 * K, 16 * K, 64 * K])
config_strategy = st.builds(
    Config,
    fmt=st.sampled_from(FORMATS),
    granule=granules,
    ias=st.integers(1, 64),
    oas=st.integers(1, 64),
    quirks=quirk_masks,
    line=st.sampled_from([32, 64, 128]),
    concat=st.sampled_from(["mandatory", "legacy"]),
    enoent_bug=st.booleans(),
    coherent_walk=st.booleans(),
    pgsize_bitmap=st.one_of(st.none(), u64s),
    page_size=granules,
    table_base=st.integers(0, (1 << 48) - 1).map(lambda n: n << 16),
    split_blk_unmap=st.booleans(),
)
scenario_strategy = st.builds(Scenario, config_strategy,
                              st.lists(op_strategy, max_size=12).map(tuple))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_strategy)
def test_hypothesis_format_then_parse_is_identity(sc):
    text = format_scenario(sc)
    assert parse_scenario(text, "gen.ops") == sc
    assert format_scenario(parse_scenario(text)) == text


# --- errors name the source, the line and the problem ---------------------------------------------

BAD_INPUTS = [
    # (name, text, line, words that must appear in the message)
    ("missing version line",
     "config fmt=arm64-s1\nmap 0 0 4K\n", 1, [V]),
    ("comment before version line",
     "# my scenario\n" + V + "\n", 1, [V]),
    ("unknown version",
     "\n# iopgfuzz ops v2\nmap 0 0 4K\n", 2, ["v2"]),
    ("unknown op",
     f"{V}\nconfig\nfrobnicate 0x1000\n", 3, ["frobnicate"]),
    ("wrong arg count",
     f"{V}\nmap 0x1000 0x2000\n", 2, ["map", "argument", "3"]),
    ("too many args",
     f"{V}\n\nunmap 0 4K 4K\n", 3, ["unmap", "argument", "2"]),
    ("bad number",
     f"{V}\nmap 0x1000 0xZZ 4K\n", 2, ["0xZZ"]),
    ("bad suffix",
     f"{V}\nmap 0x1000 0x2000 4Q\n", 2, ["4Q"]),
    ("65-bit number",
     f"{V}\nsmmu 0x10000000000000000\n", 2, ["0x10000000000000000", "64"]),
    ("65-bit number by suffix",
     f"{V}\nunmap 0 16777216T\n", 2, ["16777216T", "64"]),
    ("negative positional",
     f"{V}\nunmap -0x1000 4K\n", 2, ["negative"]),
    ("unknown config key",
     f"{V}\nconfig fmt=arm64-s1 colour=blue\n", 2, ["colour"]),
    ("bad config value: fmt",
     f"{V}\nconfig fmt=arm64-s3\n", 2, ["arm64-s3"]),
    ("bad config value: granule",
     f"{V}\nconfig granule=8K\n", 2, ["granule", "8K"]),
    ("bad config value: ias",
     f"{V}\nconfig ias=65\n", 2, ["ias", "65"]),
    ("bad config value: line",
     f"{V}\nconfig line=48\n", 2, ["line", "48"]),
    ("bad config value: concat",
     f"{V}\nconfig concat=sometimes\n", 2, ["sometimes"]),
    ("bad config value: enoent_bug",
     f"{V}\nconfig enoent_bug=yes\n", 2, ["enoent_bug", "yes"]),
    ("bad config value: split",
     f"{V}\nconfig split=on\n", 2, ["split", "on"]),
    ("bad config value: table_base",
     f"{V}\nconfig table_base=0x1000\n", 2, ["table_base", "0x1000"]),
    ("config token without =",
     f"{V}\nconfig arm64-s1\n", 2, ["arm64-s1"]),
    ("config key twice",
     f"{V}\nconfig ias=40 ias=48\n", 2, ["ias"]),
    ("unknown prot letter",
     f"{V}\nmap 0 0 4K prot=rq\n", 2, ["prot", "q"]),
    ("unknown quirk",
     f"{V}\nconfig quirks=ns,sparkle\n", 2, ["sparkle"]),
    ("unknown fail site",
     f"{V}\nfail tlb\n", 2, ["tlb"]),
    ("fail nth=0",
     f"{V}\nfail alloc nth=0\n", 2, ["nth"]),
    ("fail err not negative",
     f"{V}\nfail alloc err=5\n", 2, ["err", "5"]),
    ("unknown errno name",
     f"{V}\nfail alloc err=-EFOO\n", 2, ["EFOO"]),
    ("unknown key for op",
     f"{V}\nunmap 0 4K prot=r\n", 2, ["prot"]),
    ("key given twice",
     f"{V}\nmap 0 0 4K prot=r prot=w\n", 2, ["prot"]),
    ("second config line",
     f"{V}\nconfig ias=48\n# fine so far\nconfig oas=48\n", 4, ["config"]),
    ("config after an op",
     f"{V}\nsmmu 0\nconfig ias=48\n", 3, ["config"]),
    ("positional after key=value",
     f"{V}\nmap 0 0 prot=r 4K\n", 2, ["4K"]),
    ("segment without +",
     f"{V}\nmap_sg 0 0x1000\n", 2, ["0x1000"]),
    ("map_sg without segments",
     f"{V}\nmap_sg 0\n", 2, ["map_sg"]),
    ("evict without argument",
     f"{V}\nevict\n", 2, ["evict"]),
]


@pytest.mark.parametrize("name,text,line,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_error_names_source_line_and_problem(name, text, line, words):
    with pytest.raises(OpsSyntaxError) as exc:
        parse_scenario(text, "bad.ops")
    msg = str(exc.value)
    assert msg.startswith(f"bad.ops:{line}: "), msg
    assert exc.value.line == line
    assert exc.value.source == "bad.ops"
    for word in words:
        assert word in msg, (word, msg)


def test_empty_file_is_an_error_naming_the_source():
    for text in ("", "\n\n   \n"):
        with pytest.raises(OpsSyntaxError) as exc:
            parse_scenario(text, "empty.ops")
        assert str(exc.value).startswith("empty.ops: ")
        assert V in str(exc.value)


@pytest.mark.parametrize("seg", ["-0x1000+4K", "0x1000+-4K"])
def test_negative_segment_is_an_error(seg):
    """Regression: map_sg segments used to accept a negative PADDR or LEN."""
    with pytest.raises(OpsSyntaxError, match=r"bad\.ops:2: "):
        parse_scenario(f"{V}\nmap_sg 0 {seg}\n", "bad.ops")


@pytest.mark.parametrize("kv", ["pgsize=-0x1000", "table_base=-0x10000"])
def test_negative_config_value_is_an_error(kv):
    """Regression: `table_base=-0x10000` used to parse, and then gave `oob-access` and
    `bad-walk` findings against `fixed` (false positives)."""
    with pytest.raises(OpsSyntaxError, match=r"bad\.ops:2: "):
        parse_scenario(f"{V}\nconfig {kv}\n", "bad.ops")


# --- the command line on corrupt input: exit 2, error on stderr naming the line -------------------

@pytest.mark.parametrize("text,expect", [
    (f"{V}\nmap 0x1000 0x2000\n", r"corrupt\.ops:2: "),
    (f"{V}\nconfig\nmap 0 0 4K\nconfig ias=48\n", r"corrupt\.ops:4: "),
    ("# iopgfuzz ops v9\n", r"corrupt\.ops:1: "),
    (f"{V}\nmap 0 0 4K prot=z\n", r"corrupt\.ops:2: "),
])
def test_cli_replay_corrupt_file_exits_2(tmp_path, capsys, text, expect):
    """(A file without the version line is not tested here: `replay` hands it to the binary
    codec, for which every byte string is an input -- design §8.)"""
    path = tmp_path / "corrupt.ops"
    path.write_text(text)
    assert cli.main(["replay", str(path), "--variant", "reference"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(expect, err), err


def test_cli_replay_missing_file_exits_2(tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path / "nope.ops"), "--variant", "reference"]) == 2
    assert "nope.ops" in capsys.readouterr().err


def test_cli_replay_good_and_corrupt_file_together(tmp_path, capsys):
    good, bad = tmp_path / "good.ops", tmp_path / "bad.ops"
    good.write_text(f"{V}\nmap 0x40000000 0x80000000 2M\nsmmu 0x40000000\n")
    bad.write_text(f"{V}\nsmmu\n")
    assert cli.main(["replay", str(good), str(bad), "--variant", "reference"]) == 2
    out = capsys.readouterr()
    assert "good.ops" in out.out
    assert re.search(r"bad\.ops:2: ", out.err)

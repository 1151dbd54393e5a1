"""Format geometry (kernel-semantics §1.3 - §1.7), concatenation rules, refused configs and
the 64-byte minimum PGD allocation (§6.8).

Every expected number is computed by hand from the formulas of §1.4/§1.5 (and restated in the
comments), or by `_hand_geometry` below, an independent re-statement of those formulas that
does not import anything from the model.
"""

import pytest

from model import QUIRK_BITS, Config, ConfigRejected, World

K4, K16, K64 = 1 << 12, 1 << 14, 1 << 16
SZ_2M, SZ_32M, SZ_512M, SZ_1G = 1 << 21, 1 << 25, 1 << 29, 1 << 30
SZ_4T = 1 << 42


# --- an independent statement of §1.4 / §1.5 -------------------------------------------------

def _hand_geometry(granule, ias, oas, stage, concat="mandatory"):
    """(levels, start_level, pgd_bits, pgd_entries) straight from §1.4 and §1.5.

    pg_shift = log2(granule); bpl = pg_shift - 3; va_bits = ias - pg_shift;
    levels = ceil(va_bits / bpl); start = 4 - levels; pgd_bits = va_bits - bpl*(levels-1).
    S2 concatenation adds bpl to pgd_bits and 1 to start_level.
    """
    pg_shift = granule.bit_length() - 1
    bpl = pg_shift - 3
    va_bits = ias - pg_shift
    levels = -(-va_bits // bpl)
    start = 4 - levels
    pgd_bits = va_bits - bpl * (levels - 1)
    if stage == 2:
        if concat == "legacy":
            # before 4dcac8407fe1: start level 0 and a PGD of <= 16 entries
            do = start == 0 and (1 << pgd_bits) <= 16
        elif granule == K16 and start == 0:
            do = oas == 48 or ias == 48
        elif granule == K4 and start == 0:
            do = oas in (40, 42)
        else:
            do = granule == K16 and start == 1 and oas == 40
        if do:
            pgd_bits += bpl
            start += 1
    return 4 - start, start, pgd_bits, 1 << pgd_bits


def _geo(w):
    g = w.geometry
    return g.levels, g.start_level, g.pgd_bits, g.pgd_entries


# --- §1.7, every row -------------------------------------------------------------------------
#
# (granule, ias, oas, stage, levels, start, pgd_bits, pgd_entries), copied from the table of
# §1.7 (itself computed with the formulas; re-derived per row in the comment).  For S1 the
# geometry depends on ias only; rows whose oas has no TCR.IPS encoding (39, 47) are built with
# oas 48, since the kernel refuses oas 39/47 for ARM_64_LPAE_S1 (tested below).
S1_ROWS = [
    # 4K: bpl 9, pg_shift 12
    (K4, 32, 32, 3, 1, 2, 4),        # va 20 -> 3 levels, 20-18 = 2
    (K4, 36, 36, 3, 1, 6, 64),       # va 24 -> 3 levels, 24-18 = 6
    (K4, 39, 48, 3, 1, 9, 512),      # va 27 -> 3 levels, 27-18 = 9
    (K4, 40, 40, 4, 0, 1, 2),        # va 28 -> 4 levels, 28-27 = 1
    (K4, 42, 42, 4, 0, 3, 8),        # va 30 -> 4, 3
    (K4, 44, 44, 4, 0, 5, 32),       # va 32 -> 4, 5
    (K4, 47, 48, 4, 0, 8, 256),      # va 35 -> 4, 8
    (K4, 48, 48, 4, 0, 9, 512),      # va 36 -> 4, 9
    # 16K: bpl 11, pg_shift 14
    (K16, 32, 32, 2, 2, 7, 128),     # va 18 -> 2 levels, 18-11 = 7
    (K16, 36, 36, 2, 2, 11, 2048),   # va 22 -> 2, 11
    (K16, 40, 40, 3, 1, 4, 16),      # va 26 -> 3, 26-22 = 4
    (K16, 47, 48, 3, 1, 11, 2048),   # va 33 -> 3, 11
    (K16, 48, 48, 4, 0, 1, 2),       # va 34 -> 4, 34-33 = 1
    # 64K: bpl 13, pg_shift 16
    (K64, 32, 32, 2, 2, 3, 8),       # va 16 -> 2, 16-13 = 3
    (K64, 40, 40, 2, 2, 11, 2048),   # va 24 -> 2, 11
    (K64, 42, 42, 2, 2, 13, 8192),   # va 26 -> 2, 13
    (K64, 44, 44, 3, 1, 2, 4),       # va 28 -> 3, 28-26 = 2
    (K64, 48, 48, 3, 1, 6, 64),      # va 32 -> 3, 6
    (K64, 52, 52, 3, 1, 10, 1024),   # va 36 -> 3, 10
]

S2_ROWS = [
    # 4K ias 40: start 0, pgd_bits 1; oas 40 -> concat mandatory (2 tables <= 16): 1+9 = 10
    (K4, 40, 40, 3, 1, 10, 1024),
    # 4K ias 42: start 0, pgd_bits 3; oas 42 -> concat (8 tables): 3+9 = 12
    (K4, 42, 42, 3, 1, 12, 4096),
    # 4K ias 44 oas 44: not mandatory (oas not 40/42)
    (K4, 44, 44, 4, 0, 5, 32),
    (K4, 48, 48, 4, 0, 9, 512),
    # 16K ias 40: start 1, pgd_bits 4; 16K/start 1/oas 40 -> concat (16 tables): 4+11 = 15
    (K16, 40, 40, 2, 2, 15, 32768),
    # 16K ias 48: start 0, pgd_bits 1; 16K/start 0/ias 48 -> concat (2 tables): 1+11 = 12
    (K16, 48, 48, 3, 1, 12, 4096),
    # 64K never concatenates
    (K64, 48, 48, 3, 1, 6, 64),
]


def _ids(rows, stage):
    return [f"S{stage}-{g >> 10}K-ias{i}-oas{o}" for g, i, o, *_ in rows]


@pytest.mark.parametrize("row", S1_ROWS, ids=_ids(S1_ROWS, 1))
def test_geometry_table_s1(row):
    granule, ias, oas, levels, start, pgd_bits, entries = row
    assert _hand_geometry(granule, ias, oas, 1) == (levels, start, pgd_bits, entries)
    assert entries == 1 << pgd_bits
    w = World(Config(fmt="arm64-s1", granule=granule, ias=ias, oas=oas))
    assert _geo(w) == (levels, start, pgd_bits, entries)
    # bits_per_level = log2(granule) - 3
    assert w.geometry.bits_per_level == granule.bit_length() - 1 - 3


@pytest.mark.parametrize("row", S2_ROWS, ids=_ids(S2_ROWS, 2))
def test_geometry_table_s2(row):
    granule, ias, oas, levels, start, pgd_bits, entries = row
    assert _hand_geometry(granule, ias, oas, 2) == (levels, start, pgd_bits, entries)
    w = World(Config(fmt="arm64-s2", granule=granule, ias=ias, oas=oas))
    assert _geo(w) == (levels, start, pgd_bits, entries)


@pytest.mark.parametrize("row", S1_ROWS, ids=_ids(S1_ROWS, 1))
def test_s1_rows_as_stage_2_follow_the_formulas(row):
    """The same (granule, ias) pairs as S2 (oas chosen so the config is legal); only the
    mandatory-concatenation cases may differ from S1."""
    granule, ias, oas, *_ = row
    w = World(Config(fmt="arm64-s2", granule=granule, ias=ias, oas=oas))
    assert _geo(w) == _hand_geometry(granule, ias, oas, 2)


# --- the two concatenation rules ---------------------------------------------------------------
#
# (granule, ias, oas, legacy geometry, mandatory geometry), each by hand:
CONCAT_CASES = [
    # 4K ias 44 oas 44: start 0, 32 entries > 16 -> legacy no; oas 44 -> mandatory no
    (K4, 44, 44, (4, 0, 5, 32), (4, 0, 5, 32)),
    # 4K ias 40 oas 48: start 0, 2 entries <= 16 -> legacy concat (pgd 1+9);
    # mandatory needs oas 40/42 -> no
    (K4, 40, 48, (3, 1, 10, 1024), (4, 0, 1, 2)),
    # 4K ias 42 oas 44: 8 entries -> legacy concat (3+9); oas 44 -> mandatory no
    (K4, 42, 44, (3, 1, 12, 4096), (4, 0, 3, 8)),
    # 4K ias 40 oas 40: both concatenate
    (K4, 40, 40, (3, 1, 10, 1024), (3, 1, 10, 1024)),
    # 4K ias 36 oas 40: va 24 -> 3 levels, start 1 already: neither rule
    (K4, 36, 40, (3, 1, 6, 64), (3, 1, 6, 64)),
    # 16K ias 40 oas 40: start 1 -> legacy never; mandatory 16K/start 1/oas 40 -> 4+11 = 15
    (K16, 40, 40, (3, 1, 4, 16), (2, 2, 15, 32768)),
    # 16K ias 37 oas 40: va 23 -> 3 levels, pgd_bits 23-22 = 1; mandatory -> 12
    (K16, 37, 40, (3, 1, 1, 2), (2, 2, 12, 4096)),
    # 16K ias 48 oas 48: start 0, 2 entries: both (1+11 = 12)
    (K16, 48, 48, (3, 1, 12, 4096), (3, 1, 12, 4096)),
    # 16K ias 44 oas 48: va 30 -> 3 levels start 1, pgd_bits 8; neither
    (K16, 44, 48, (3, 1, 8, 256), (3, 1, 8, 256)),
    # 64K ias 48 oas 48: start 1: neither
    (K64, 48, 48, (3, 1, 6, 64), (3, 1, 6, 64)),
    # 64K ias 32 oas 48: va 16 -> 2 levels, pgd_bits 3: neither
    (K64, 32, 48, (2, 2, 3, 8), (2, 2, 3, 8)),
]


@pytest.mark.parametrize("case", CONCAT_CASES,
                         ids=[f"{g >> 10}K-ias{i}-oas{o}" for g, i, o, *_ in CONCAT_CASES])
def test_concat_legacy_vs_mandatory(case):
    granule, ias, oas, legacy, mandatory = case
    assert _hand_geometry(granule, ias, oas, 2, "legacy") == legacy
    assert _hand_geometry(granule, ias, oas, 2, "mandatory") == mandatory
    wl = World(Config(fmt="arm64-s2", granule=granule, ias=ias, oas=oas, concat="legacy"))
    wm = World(Config(fmt="arm64-s2", granule=granule, ias=ias, oas=oas, concat="mandatory"))
    assert _geo(wl) == legacy
    assert _geo(wm) == mandatory


def test_concat_mandatory_over_16_tables_is_refused_but_legacy_is_not():
    # 4K ias 44: start 0, pgd_bits 5 = 32 tables > 16; oas 40 makes concatenation mandatory
    # -> WARN_ON and NULL.  The legacy rule simply does not concatenate (32 > 16).
    with pytest.raises(ConfigRejected):
        World(Config(fmt="arm64-s2", granule=K4, ias=44, oas=40))
    w = World(Config(fmt="arm64-s2", granule=K4, ias=44, oas=40, concat="legacy"))
    assert _geo(w) == (4, 0, 5, 32)


def test_concat_default_is_mandatory():
    # 4K ias 40 oas 48: legacy would concatenate, mandatory does not (start 0, 2 entries)
    w = World(Config(fmt="arm64-s2", granule=K4, ias=40, oas=48))
    assert _geo(w) == (4, 0, 1, 2)


# --- refused configurations ------------------------------------------------------------------

@pytest.mark.parametrize("config", [
    # ARM_64_LPAE_S2 accepts only S2FWB | NO_WARN
    Config(fmt="arm64-s2", quirks=QUIRK_BITS["ttbr1"]),
    Config(fmt="arm64-s2", quirks=QUIRK_BITS["ns"]),
    Config(fmt="arm64-s2", quirks=QUIRK_BITS["hd"]),
    # ARM_64_LPAE_S1 refuses S2FWB
    Config(fmt="arm64-s1", quirks=QUIRK_BITS["s2fwb"]),
    # oas must be one of 32/36/40/42/44/48/52 for TCR.IPS / VTCR.PS
    Config(fmt="arm64-s1", ias=39, oas=39),
    Config(fmt="arm64-s1", ias=32, oas=47),
    Config(fmt="arm64-s2", ias=32, oas=39),
    # mandatory concatenation needing 32 > 16 tables
    Config(fmt="arm64-s2", granule=K4, ias=44, oas=40),
    Config(fmt="arm64-s2", granule=K4, ias=44, oas=42),
    # ARM_32_LPAE_S1: ias <= 32, oas <= 40
    Config(fmt="arm32-s1", ias=40, oas=40),
    Config(fmt="arm32-s1", ias=32, oas=42),
    # ARM_32_LPAE_S2: ias <= 40, oas <= 40
    Config(fmt="arm32-s2", ias=42, oas=40),
    # Mali: no quirks; oas <= 40
    Config(fmt="mali", ias=48, oas=40, quirks=QUIRK_BITS["no_warn"]),
    Config(fmt="mali", ias=48, oas=44),
    # OUTER_WBWA with a coherent walk
    Config(fmt="arm64-s1", quirks=QUIRK_BITS["outer_wbwa"], coherent_walk=True),
], ids=lambda c: f"{c.fmt}-ias{c.ias}-oas{c.oas}-q{c.quirks:#x}-coh{int(c.coherent_walk)}")
def test_refused_configs(config):
    with pytest.raises(ConfigRejected):
        World(config)


@pytest.mark.parametrize("config", [
    Config(fmt="arm64-s1", quirks=QUIRK_BITS["ttbr1"] | QUIRK_BITS["ns"] | QUIRK_BITS["hd"]
           | QUIRK_BITS["outer_wbwa"] | QUIRK_BITS["no_warn"]),
    Config(fmt="arm64-s2", quirks=QUIRK_BITS["s2fwb"] | QUIRK_BITS["no_warn"]),
    Config(fmt="arm32-s1", ias=32, oas=40),
    Config(fmt="arm32-s2", ias=40, oas=40),
    Config(fmt="mali", ias=48, oas=40),
], ids=lambda c: c.fmt)
def test_accepted_configs(config):
    """The counterpart of the refusals: the allowed quirk sets and limits are accepted."""
    World(config)


def test_arm32_s1_geometry():
    # ias 32, 4K: 3 levels from level 1, pgd_bits 2 (as the 64-bit S1 row); bitmap 4K|2M|1G
    w = World(Config(fmt="arm32-s1", ias=32, oas=40))
    assert _geo(w) == (3, 1, 2, 4)
    assert w.geometry.pgsize_bitmap == K4 | SZ_2M | SZ_1G


def test_mali_forces_a_four_level_table():
    # ias 39: va 27 -> 3 levels from level 1; Mali forces start 0 and pgd_bits 0 (1 entry)
    w = World(Config(fmt="mali", ias=39, oas=40))
    assert _geo(w) == (4, 0, 0, 1)
    # ias 40 already starts at level 0 (pgd_bits 1): unchanged
    w = World(Config(fmt="mali", ias=40, oas=40))
    assert _geo(w) == (4, 0, 1, 2)


# --- arm_lpae_restrict_pgsizes --------------------------------------------------------------

def test_restrict_4k_drops_the_512g_block():
    # requested: 4K|2M|1G|512G (everything the 4K format can express); kept: 4K|2M|1G
    w = World(Config(granule=K4, pgsize_bitmap=K4 | SZ_2M | SZ_1G | (1 << 39)))
    assert w.geometry.pgsize_bitmap == K4 | SZ_2M | SZ_1G == 0x40201000
    # the default bitmap is "everything the granule can express" -> same result
    assert World(Config(granule=K4)).geometry.pgsize_bitmap == 0x40201000


def test_restrict_16k_drops_64g_and_128t():
    w = World(Config(granule=K16, ias=48, oas=48, page_size=K16,
                     pgsize_bitmap=K16 | SZ_32M | (1 << 36) | (1 << 47)))
    assert w.geometry.pgsize_bitmap == K16 | SZ_32M


@pytest.mark.parametrize("oas,expected", [
    (52, K64 | SZ_512M | SZ_4T),   # oas > 48: the 4 TB level-1 block exists
    (48, K64 | SZ_512M),           # oas 48: no 4 TB block
])
def test_restrict_64k_4t_block_needs_oas_52(oas, expected):
    w = World(Config(granule=K64, ias=48, oas=oas, page_size=K64,
                     pgsize_bitmap=K64 | SZ_512M | SZ_4T))
    assert w.geometry.pgsize_bitmap == expected


def test_restrict_clamps_ias_and_oas_to_48_for_4k():
    # max_addr_bits is 48 for 4K: ias 52 -> 48 (so 4 levels from 0 with pgd_bits 9), oas 52
    # -> 48 (which has an IPS encoding, so the config is accepted)
    w = World(Config(granule=K4, ias=52, oas=52))
    assert (w.geometry.ias, w.geometry.oas) == (48, 48)
    assert _geo(w) == (4, 0, 9, 512)


def test_restrict_keeps_52_bits_for_64k():
    w = World(Config(granule=K64, ias=52, oas=52, page_size=K64))
    assert (w.geometry.ias, w.geometry.oas) == (52, 52)


@pytest.mark.parametrize("page_size,granule,bitmap", [
    # PAGE_SIZE in the bitmap: it wins
    (K64, K64, K64 | SZ_512M),
    (K4, K4, K4 | SZ_2M),
    # 16K not in the bitmap: the largest size below PAGE_SIZE (4K) is the granule
    (K16, K4, K4 | SZ_2M),
])
def test_restrict_prefers_the_cpu_page_size(page_size, granule, bitmap):
    w = World(Config(granule=granule, page_size=page_size,
                     pgsize_bitmap=K4 | SZ_2M | K64 | SZ_512M))
    assert w.geometry.granule == granule
    assert w.geometry.pgsize_bitmap == bitmap


def test_restrict_smallest_larger_granule_when_nothing_smaller():
    # PAGE_SIZE 4K, bitmap 16K|64K|...: nothing <= 4K, so the smallest larger size (16K)
    w = World(Config(granule=K16, page_size=K4, pgsize_bitmap=K16 | SZ_32M | K64))
    assert w.geometry.granule == K16
    assert w.geometry.pgsize_bitmap == K16 | SZ_32M


# --- §6.8: the PGD allocation is at least 64 bytes, 64-byte aligned ----------------------------

ALL_ROWS = [("arm64-s1",) + r for r in S1_ROWS] + [("arm64-s2",) + r for r in S2_ROWS] + [
    ("mali", K4, 39, 40, 4, 0, 0, 1),    # a one-entry (8-byte) PGD
    ("arm32-s1", K4, 32, 40, 3, 1, 2, 4),
]


@pytest.mark.parametrize("row", ALL_ROWS,
                         ids=[f"{r[0]}-{r[1] >> 10}K-ias{r[2]}" for r in ALL_ROWS])
def test_pgd_allocation_at_least_64_bytes(row):
    fmt, granule, ias, oas, _levels, _start, _pgd_bits, entries = row
    w = World(Config(fmt=fmt, granule=granule, ias=ias, oas=oas))
    pgd = w.data.pgd
    # PGD_SIZE = 8 * entries; allocation = max(PGD_SIZE, 64)
    assert pgd.alloc_bytes == max(8 * entries, 64)
    assert pgd.alloc_bytes >= 64
    assert pgd.pa % 64 == 0
    assert pgd.entries == entries


@pytest.mark.parametrize("fmt,granule,ias,pgd_bytes", [
    ("arm64-s1", K4, 40, 16),    # 2 entries
    ("arm64-s1", K4, 32, 32),    # 4 entries
    ("arm64-s1", K16, 48, 16),   # 2 entries
    ("arm64-s1", K64, 44, 32),   # 4 entries
    ("mali", K4, 39, 8),         # 1 entry
])
def test_tiny_pgds_get_64_bytes(fmt, granule, ias, pgd_bytes):
    oas = 40 if fmt == "mali" else ias
    w = World(Config(fmt=fmt, granule=granule, ias=ias, oas=oas))
    assert w.data.pgd.entries * 8 == pgd_bytes < 64
    assert w.data.pgd.alloc_bytes == 64
    assert w.data.pgd.pa % 64 == 0

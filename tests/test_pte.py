"""PTE encoding (kernel-semantics §1.8, §2): prot -> attribute bits, 52-bit PA folding, and
the exact descriptors a real map leaves in memory.

The bit values are written out here from the table of §2.1 (not imported from model.pte), so
that a wrong constant in the model cannot make its own test pass.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model import (
    IOMMU_CACHE,
    IOMMU_MMIO,
    IOMMU_NOEXEC,
    IOMMU_PRIV,
    IOMMU_READ,
    IOMMU_WRITE,
    QUIRK_BITS,
    Config,
    World,
)
from model.pte import arm_lpae_prot_to_pte, iopte_to_paddr, paddr_to_iopte

R, W, C, X, M, P = IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_MMIO, IOMMU_PRIV
# §2.1, by hand
NG = 1 << 11
AF = 1 << 10
SH_OS = 2 << 8
SH_IS = 3 << 8
AP_UNPRIV = 1 << 6          # S1
AP_RDONLY = 2 << 6          # S1 (bit 7)
HAP_READ = 1 << 6           # S2
HAP_WRITE = 2 << 6          # S2
NS = 1 << 5
DBM = 1 << 51
XN = 3 << 53                # bits 54:53
NSTABLE = 1 << 63


def ATTR(i):                # S1 ATTRINDX, bits 4:2
    return i << 2


MEMATTR_OIWB, MEMATTR_NC, MEMATTR_DEV, MEMATTR_FWB_WB = 0xF << 2, 0x5 << 2, 0x1 << 2, 0x6 << 2
TYPE_BLOCK, TYPE_TABLE, TYPE_PAGE = 1, 3, 3

Q_NS, Q_HD, Q_S2FWB = QUIRK_BITS["ns"], QUIRK_BITS["hd"], QUIRK_BITS["s2fwb"]


def GENMASK(h, lo):
    return ((1 << (h + 1)) - 1) & ~((1 << lo) - 1)


# --- arm_lpae_prot_to_pte ---------------------------------------------------------------------

S1_CASES = [
    # (prot, quirks, expected) -- nG always; AF always; AP_UNPRIV unless PRIV
    (R | W | C, 0, NG | AP_UNPRIV | ATTR(1) | SH_IS | AF),               # = 0xf44
    (R, 0, NG | AP_RDONLY | AP_UNPRIV | ATTR(0) | SH_OS | AF),           # = 0xec0
    (W, 0, NG | AP_UNPRIV | SH_OS | AF),                                 # write-only: no RDONLY
    (R | W, 0, NG | AP_UNPRIV | SH_OS | AF),                             # = 0xe40
    (R | W | P, 0, NG | SH_OS | AF),                                     # privileged
    (R | W | M, 0, NG | AP_UNPRIV | ATTR(2) | SH_OS | AF),               # device memory
    (R | W | M | C, 0, NG | AP_UNPRIV | ATTR(2) | SH_IS | AF),           # MMIO wins the index
    (R | X, 0, NG | AP_RDONLY | AP_UNPRIV | SH_OS | XN | AF),
    (R | W | C | X | P, 0, NG | ATTR(1) | SH_IS | XN | AF),
    (R | W, Q_NS, NG | AP_UNPRIV | SH_OS | NS | AF),
    (R | W, Q_HD, NG | DBM | AP_UNPRIV | SH_OS | AF),                    # writable + HD: DBM
    (W, Q_HD, NG | DBM | AP_UNPRIV | SH_OS | AF),
    (R, Q_HD, NG | AP_RDONLY | AP_UNPRIV | SH_OS | AF),                  # read-only: no DBM
    (R | W | C, Q_HD | Q_NS, NG | DBM | AP_UNPRIV | ATTR(1) | SH_IS | NS | AF),
]


@pytest.mark.parametrize("fmt", ["arm64-s1", "arm32-s1"])
@pytest.mark.parametrize("prot,quirks,expected", S1_CASES)
def test_prot_to_pte_stage1(fmt, prot, quirks, expected):
    assert arm_lpae_prot_to_pte(fmt, quirks, prot) == expected


def test_prot_to_pte_stage1_spot_values():
    # The two commonest S1 encodings as plain numbers: 0x800|0x40|0x4|0x300|0x400 and
    # 0x800|0x80|0x40|0x200|0x400
    assert arm_lpae_prot_to_pte("arm64-s1", 0, R | W | C) == 0xF44
    assert arm_lpae_prot_to_pte("arm64-s1", 0, R) == 0xEC0


S2_CASES = [
    # (prot, quirks, expected) -- HAP bits from R/W; MEMATTR; no nG, no AP_UNPRIV
    (R | W | C, 0, HAP_READ | HAP_WRITE | MEMATTR_OIWB | SH_IS | AF),     # = 0x7fc
    (R, 0, HAP_READ | MEMATTR_NC | SH_OS | AF),                           # = 0x654
    (W, 0, HAP_WRITE | MEMATTR_NC | SH_OS | AF),
    (R | W | M, 0, HAP_READ | HAP_WRITE | MEMATTR_DEV | SH_OS | AF),      # = 0x6c4
    (R | W | M | C, 0, HAP_READ | HAP_WRITE | MEMATTR_DEV | SH_IS | AF),
    (R | W | C, Q_S2FWB, HAP_READ | HAP_WRITE | MEMATTR_FWB_WB | SH_IS | AF),   # = 0x7d8
    (R | W, Q_S2FWB, HAP_READ | HAP_WRITE | MEMATTR_NC | SH_OS | AF),    # FWB only for CACHE
    (R | X, 0, HAP_READ | MEMATTR_NC | SH_OS | XN | AF),
    (R | W | P, 0, HAP_READ | HAP_WRITE | MEMATTR_NC | SH_OS | AF),      # PRIV: no S2 effect
]


@pytest.mark.parametrize("fmt", ["arm64-s2", "arm32-s2"])
@pytest.mark.parametrize("prot,quirks,expected", S2_CASES)
def test_prot_to_pte_stage2(fmt, prot, quirks, expected):
    assert arm_lpae_prot_to_pte(fmt, quirks, prot) == expected


def test_prot_to_pte_stage2_spot_values():
    assert arm_lpae_prot_to_pte("arm64-s2", 0, R | W | C) == 0x7FC
    assert arm_lpae_prot_to_pte("arm64-s2", Q_S2FWB, R | W | C) == 0x7D8
    assert arm_lpae_prot_to_pte("arm64-s2", 0, R) == 0x654


def test_prot_to_pte_mali():
    # Mali: HAP-style permissions, S1-style ATTRINDX, always SH_OS, no AF
    assert arm_lpae_prot_to_pte("mali", 0, R | W | C) == HAP_READ | HAP_WRITE | ATTR(1) | SH_OS
    assert arm_lpae_prot_to_pte("mali", 0, R | W | C) == 0x2C4
    assert arm_lpae_prot_to_pte("mali", 0, R | M) == HAP_READ | ATTR(2) | SH_OS


# --- 52-bit PA folding (§1.8) -----------------------------------------------------------------

def test_paddr_to_iopte_folds_bit_50_into_bit_14():
    pa = (1 << 50) | 0x10000
    # (pa | pa >> 36) & GENMASK(47, 12): bit 50 -> bit 14, bit 16 stays
    assert paddr_to_iopte(pa, 1 << 16) == (1 << 14) | 0x10000 == 0x14000
    assert iopte_to_paddr(0x14000, 1 << 16) == pa


def test_paddr_to_iopte_all_high_bits():
    pa = (0xF << 48) | 0xABCD_0000
    # PA[51:48] = 0xf -> PTE[15:12]; PA[47:16] unchanged
    assert paddr_to_iopte(pa, 1 << 16) == 0xABCD_0000 | 0xF000
    assert iopte_to_paddr(0xABCD_F000, 1 << 16) == pa


def test_iopte_to_paddr_ignores_attribute_bits():
    # attribute bits (AF, SH, nG, DBM at 51, XN at 54:53, SW bits) are not address bits
    pte = 0x14000 | NG | AF | SH_IS | XN | DBM | (1 << 55) | TYPE_PAGE
    assert iopte_to_paddr(pte, 1 << 16) == (1 << 50) | 0x10000
    # with a 4K granule bits 15:12 are plain address bits
    assert iopte_to_paddr(pte, 1 << 12) == 0x14000


@given(st.integers(min_value=0, max_value=(1 << 36) - 1))
def test_52bit_round_trip_64k(frame):
    pa = frame << 16                       # any 64K-aligned PA below 2^52
    expected_pte = ((pa >> 48) << 12) | (pa & GENMASK(47, 16))
    assert paddr_to_iopte(pa, 1 << 16) == expected_pte
    assert iopte_to_paddr(expected_pte, 1 << 16) == pa


@given(st.integers(min_value=0, max_value=(1 << 36) - 1),
       st.sampled_from([1 << 12, 1 << 14]))
def test_identity_below_2_48_for_small_granules(frame, granule):
    pa = frame << 12                       # any 4K-aligned PA below 2^48
    pa &= ~(granule - 1)
    assert paddr_to_iopte(pa, granule) == pa
    assert iopte_to_paddr(pa, granule) == pa


# --- leaf and table descriptors left by a real map -------------------------------------------

def _check_table_descs(walk, extra=0):
    """Every non-final step must be a table descriptor pointing at the next step's table."""
    for cur, nxt in zip(walk.steps, walk.steps[1:], strict=False):
        assert cur.desc == nxt.table_pa | TYPE_TABLE | extra, walk.describe()


def test_leaf_pte_of_a_4k_map_arm64_s1():
    w = World(Config(fmt="arm64-s1", granule=1 << 12, ias=48, oas=48))
    assert w.map(0x1000, 0x5000, 0x1000, R | W | C) == 0
    walk = w.smmu_walk(0x1000)
    assert walk.ok and walk.oa == 0x5000
    # 4 levels (0..3); leaf at L3, index 1 (0x1000 >> 12)
    assert [s.lvl for s in walk.steps] == [0, 1, 2, 3]
    assert walk.steps[-1].idx == 1
    # prot R|W|CACHE = nG|AP_UNPRIV|ATTRINDX 1|SH_IS|AF = 0x800|0x40|0x4|0x300|0x400 = 0xf44;
    # PAGE type 3; address 0x5000  ->  0x5f47
    assert walk.steps[-1].desc == 0x5000 | 0xF44 | 3 == 0x5F47
    _check_table_descs(walk)
    assert w.pt_iova_to_phys(0x1234) == 0x5234


def test_block_pte_of_a_2m_map_arm64_s1():
    w = World(Config(fmt="arm64-s1"))
    assert w.map(0x200000, 0x4000_0000, 1 << 21, R | W) == 0
    walk = w.smmu_walk(0x2ABCDE)
    # L0 -> L1 -> L2 block; R|W = nG|AP_UNPRIV|SH_OS|AF = 0x800|0x40|0x200|0x400 = 0xe40;
    # BLOCK type 1
    assert [s.lvl for s in walk.steps] == [0, 1, 2]
    assert walk.steps[-1].desc == 0x4000_0000 | 0xE40 | TYPE_BLOCK == 0x4000_0E41
    assert walk.oa == 0x4000_0000 + 0xABCDE
    _check_table_descs(walk)


def test_ns_quirk_sets_ns_in_leaves_and_nstable_in_tables():
    w = World(Config(fmt="arm64-s1", quirks=Q_NS))
    assert w.map(0x1000, 0x5000, 0x1000, R) == 0
    walk = w.smmu_walk(0x1000)
    # R: nG|AP_RDONLY|AP_UNPRIV|SH_OS|AF = 0xec0, plus NS (0x20)
    assert walk.steps[-1].desc == 0x5000 | 0xEC0 | NS | TYPE_PAGE
    _check_table_descs(walk, NSTABLE)


def test_leaf_pte_of_a_4k_map_arm64_s2():
    w = World(Config(fmt="arm64-s2", ias=48, oas=48))
    assert w.map(0x1000, 0x5000, 0x1000, R | W | C) == 0
    walk = w.smmu_walk(0x1000)
    # HAP_READ|HAP_WRITE|OIWB|SH_IS|AF = 0x40|0x80|0x3c|0x300|0x400 = 0x7fc; PAGE 3
    assert walk.steps[-1].desc == 0x5000 | 0x7FC | 3 == 0x57FF
    _check_table_descs(walk)


def test_leaf_pte_of_a_4k_map_mali_uses_block_type_at_level_3():
    w = World(Config(fmt="mali", ias=48, oas=40))
    assert w.map(0x1000, 0x5000, 0x1000, R | W) == 0
    walk = w.smmu_walk(0x1000)
    # Mali: HAP_READ|HAP_WRITE|SH_OS = 0x2c0, no AF; level-3 leaves use type 1
    assert walk.steps[-1].lvl == 3
    assert walk.steps[-1].desc == 0x5000 | 0x2C0 | 1 == 0x52C1
    assert walk.oa == 0x5000


def test_leaf_pte_with_52bit_output_address():
    w = World(Config(fmt="arm64-s1", granule=1 << 16, ias=48, oas=52, page_size=1 << 16))
    pa = (1 << 50) | 0x10000
    assert w.map(0x10000, pa, 0x10000, R | W | C) == 0
    walk = w.smmu_walk(0x10000)
    # address field 0x14000 (bit 50 -> bit 14); prot 0xf44; PAGE 3
    assert walk.steps[-1].desc == 0x14000 | 0xF44 | 3
    assert walk.oa == pa
    assert w.pt_iova_to_phys(0x12345) == pa + 0x2345

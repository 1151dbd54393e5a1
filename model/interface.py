"""The one interface a world offers the executor and the oracles.

A world is one configured page table, its iommu domain and driver, under one variant.  The
Python model's `World` and the compiled kernel C's `CWorld` both implement `WorldInterface`;
the executor (fuzz/run) and the oracles (fuzz/judge) use nothing else of a world, so a new
world (another build, another kernel) only has to implement this.  `tests/test_world_interface.py`
runs the executor on worlds that hide everything else and checks the results do not change.

Five groups:

- **entry points**: the iommu core's calls and the direct io-pgtable ops, with the kernel's
  arguments and returns (`map` ... `free`);
- **hardware and cache**: what the SMMU reads and what the cache holds (`smmu_walk`,
  `first_divergence`, `first_hole`, `translate_range`, `evict`) and the failpoints (`fail`);
- **recording**: `begin_op` / `end_op` bracket one op and give what it did (`OpTrace`: events,
  failpoints fired, cleans per call site, the sync walks' reads and cleans once
  `trace_sync_walks` asked for them);
- **inspection**: the geometry, `block_size`, the tables as the CPU wrote them
  (`take_changed_tables`, `table_view`), `stats`, `live_tables`, `dirty_lines`, and the
  driver layer's reading of a call upstream is known to mishandle (`upstream_causes`);
- **state**: `config`, `variant`, `crashed` (a `BUG_ON` ends a world) and `events`, the whole
  event log (for tools; an op's own events are in its `OpTrace`).

The record types (`OpTrace`, `SyncCall`, and the model's `AccessRecord`, `CleanRecord`,
`Table` they hold) are part of the interface: a C world builds the model's own.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from .events import Event
from .failpoints import Fired
from .memory import AccessRecord, CleanRecord


@dataclass
class SyncCall:
    """One call of the world's io-pgtable `iotlb_sync_map` while its walks are traced: the
    entries the walk read, the lines it cleaned, the `sync_map` failpoint's hits and what
    fired."""

    iova: int
    size: int
    ret: int | None = None
    accesses: list[AccessRecord] = field(default_factory=list)
    cleans: list[CleanRecord] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)       # sync_map failpoint hit numbers
    fired: list[Fired] = field(default_factory=list)


@dataclass
class OpTrace:
    """What one op (between `begin_op` and `end_op`) did in a world."""

    events: list[Event] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    cleans: dict = field(default_factory=dict)        # site -> [calls, lines] during the op
    sync_calls: list[SyncCall] = field(default_factory=list)


#: The names of the interface, for the test that hides everything else of a world.
INTERFACE = frozenset({
    # entry points
    "map", "map_nosync", "sync", "map_sg", "unmap", "pt_map_pages", "pt_unmap_pages",
    "pt_sync_map", "has_pt_sync_map", "pt_iova_to_phys", "free",
    # hardware and cache
    "smmu_walk", "first_divergence", "first_hole", "translate_range", "evict", "fail",
    # recording
    "begin_op", "end_op", "trace_sync_walks",
    # inspection
    "geometry", "block_size", "ptes_per_table", "take_changed_tables", "table_view", "stats",
    "live_tables", "dirty_lines", "upstream_causes",
    # state
    "config", "variant", "crashed", "events",
})


class WorldInterface(abc.ABC):
    """See the module docstring.  Every method is the world's; none changes another world."""

    # -- entry points (the kernel's arguments; returns as the C returns them) ---------------

    @abc.abstractmethod
    def map(self, iova: int, paddr: int, size: int, prot: int) -> int:
        """`iommu_map()`: map and sync."""

    @abc.abstractmethod
    def map_nosync(self, iova: int, paddr: int, size: int, prot: int) -> int:
        """`iommu_map_nosync()`: map without the sync."""

    @abc.abstractmethod
    def sync(self, iova: int, size: int) -> int:
        """`iommu_sync_map()`."""

    @abc.abstractmethod
    def map_sg(self, iova: int, segments, prot: int) -> int:
        """`iommu_map_sg()`: bytes mapped, or a negative errno (as a C ssize_t)."""

    @abc.abstractmethod
    def unmap(self, iova: int, size: int) -> int:
        """`iommu_unmap()`: bytes unmapped (size_t)."""

    @abc.abstractmethod
    def pt_map_pages(self, iova: int, paddr: int, pgsize: int, pgcount: int,
                     prot: int) -> tuple[int, int]:
        """`ops->map_pages` called directly: (return, *mapped)."""

    @abc.abstractmethod
    def pt_unmap_pages(self, iova: int, pgsize: int, pgcount: int) -> int:
        """`ops->unmap_pages` called directly."""

    @property
    @abc.abstractmethod
    def has_pt_sync_map(self) -> bool:
        """Whether the io-pgtable's `iotlb_sync_map` is set."""

    @abc.abstractmethod
    def pt_sync_map(self, iova: int, size: int) -> int | None:
        """`ops->iotlb_sync_map` called directly; None when it is NULL."""

    @abc.abstractmethod
    def pt_iova_to_phys(self, iova: int) -> int:
        """`ops->iova_to_phys`."""

    @abc.abstractmethod
    def free(self) -> None:
        """`free_io_pgtable_ops()`."""

    # -- hardware and cache -----------------------------------------------------------------

    @abc.abstractmethod
    def smmu_walk(self, iova: int, view: str = "mem"):
        """The SMMU's walk of `iova` (`model.smmu.Walk`) over memory (`mem`) or over what the
        CPU wrote (`cpu`)."""

    @abc.abstractmethod
    def first_divergence(self, iova: int, size: int):
        """The first IOVA of the range whose memory walk differs from its CPU walk in hardware
        bits (`model.smmu.Divergence`), or None."""

    @abc.abstractmethod
    def first_hole(self, iova: int, size: int, view: str = "cpu") -> int | None:
        """The lowest IOVA of the range that does not translate (None: fully mapped)."""

    @abc.abstractmethod
    def translate_range(self, iova: int, npages: int, page: int, view: str = "mem"):
        """(output addresses, translated?) of `npages` pages of `page` bytes from `iova`."""

    @abc.abstractmethod
    def evict(self, iova: int | None = None) -> int:
        """Write back dirty lines (all, or those of `iova`'s CPU walk); how many."""

    @abc.abstractmethod
    def fail(self, site: str, nth: int = 1, err: int | None = None) -> None:
        """Arm a failpoint: the `nth` next hit of `site` fails with `err`."""

    # -- recording --------------------------------------------------------------------------

    @abc.abstractmethod
    def begin_op(self) -> None:
        """Start recording one op (ops do not nest)."""

    @abc.abstractmethod
    def end_op(self, into: OpTrace | None = None) -> OpTrace:
        """What happened since `begin_op`: filled into `into` (an `OpTrace` of a subclass the
        caller keeps, such as the executor's `Outcome`), else into a new `OpTrace`."""

    @abc.abstractmethod
    def trace_sync_walks(self) -> bool:
        """From now on, record every call of the io-pgtable `iotlb_sync_map` (its reads and
        cleans) in the `OpTrace`; False when the world has no such op."""

    # -- inspection -------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def geometry(self):
        """`model.world.Geometry`: levels, PGD, granule, IAS and OAS as the table has them."""

    @abc.abstractmethod
    def block_size(self, lvl: int) -> int:
        """`ARM_LPAE_BLOCK_SIZE(lvl)`: the IOVA span of one entry at `lvl`."""

    @property
    @abc.abstractmethod
    def ptes_per_table(self) -> int:
        """Entries of a (non-PGD) table."""

    @abc.abstractmethod
    def take_changed_tables(self) -> set[int]:
        """Physical addresses of the tables allocated, freed or stored to since the last call."""

    @abc.abstractmethod
    def table_view(self, pa: int) -> tuple[bool, np.ndarray] | None:
        """(freed, the CPU view of its logical entries) of the table at `pa`, or None."""

    @abc.abstractmethod
    def stats(self) -> dict:
        """Clean statistics in the `replay --json` schema (design §6)."""

    @abc.abstractmethod
    def live_tables(self) -> int:
        """Tables allocated and not freed."""

    @abc.abstractmethod
    def dirty_lines(self) -> int:
        """Lines the CPU wrote that memory does not hold yet."""

    @abc.abstractmethod
    def upstream_causes(self, iova: int, pgsize: int, pgcount: int) -> list[tuple[str, str]]:
        """(name, explanation) of every way upstream io-pgtable is known to mishandle a
        `map_pages`/`unmap_pages` call with these arguments on this table (model.driver)."""

"""The kernel API a sync variant may use: the same names as in io-pgtable-arm.c.

Built-in variants import only this module (and `model.variants.base`), so a plugin written
against it can do everything they do.  See docs/variants.md for a worked example.
"""

from __future__ import annotations

from .cint import EINVAL, EIO, ERANGE, c_int, min_t_int, min_t_ulong, s64, sar64, size_t, u64, ulong
from .config import IO_PGTABLE_QUIRK_ARM_TTBR1, IO_PGTABLE_QUIRK_NO_WARN
from .io_pgtable_arm import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_GRANULE,
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_LVL_SHIFT,
    ARM_LPAE_MAX_LEVELS,
    ARM_LPAE_PGD_IDX,
    ARM_LPAE_PGD_SIZE,
    ARM_LPAE_PTES_PER_TABLE,
    ArmLpaeIoPgtable,
    IoPgtableOps,
    arm_lpae_max_entries,
    iopte_deref,
)
from .io_pgtable_arm import __arm_lpae_sync_pte as _sync_pte
from .memory import Ptep
from .pte import (
    ARM_LPAE_PTE_SW_SYNC,
    ARM_LPAE_PTE_TYPE_BLOCK,
    ARM_LPAE_PTE_TYPE_PAGE,
    ARM_LPAE_PTE_TYPE_TABLE,
    iopte_leaf,
    iopte_table,
    iopte_type,
)


def io_pgtable_ops_to_data(ops: IoPgtableOps) -> ArmLpaeIoPgtable:
    return ops.data


def arm_lpae_sync_pte(ptep: Ptep, num_entries: int, data: ArmLpaeIoPgtable) -> None:
    """`__arm_lpae_sync_pte(ptep, num_entries, &data->iop.cfg)` from a sync walker: one
    `dma_sync_single_for_device` of `8 * num_entries` bytes, counted under `sync_map`."""
    _sync_pte(ptep, num_entries, data.iop.cfg, site="sync_map")


def sync_map_failpoint(data: ArmLpaeIoPgtable) -> int:
    """Every sync walker calls this at the start of every level; it returns 0, or the
    negative errno a `fail sync_map` op armed (an error a real walker could meet there)."""
    return data.failpoints.should_fail("sync_map")


def WARN_ON_MANY(data: ArmLpaeIoPgtable, count: int, site: str, detail: str = "",  # noqa: N802
                 *args) -> None:
    """`count` WARN_ON()s at one site fired by one vectorised loop (one event, counted).
    With `args`, `detail` is a str.format template, formatted only when count > 0."""
    count = int(count)
    if count > 0:
        data.events.warn_many(count, site, detail.format(*args) if args else detail)


def WARN_ON(data: ArmLpaeIoPgtable, cond, site: str, detail: str = "", *args) -> bool:  # noqa: N802
    """`WARN_ON(cond)`: records an event at `site` when true; evaluates to `bool(cond)`.
    With `args`, `detail` is a str.format template, formatted only when the WARN fires."""
    if cond:
        data.events.warn_on(True, site, detail.format(*args) if args else detail)
    return bool(cond)


def pgd(data: ArmLpaeIoPgtable) -> Ptep:
    """`data->pgd` as a pointer."""
    return Ptep(data.mem, data.pgd, 0)


def cache_line_size(data: ArmLpaeIoPgtable) -> int:
    """arm64 `cache_line_size()`: the D-cache line the cleans work in (32, 64 or 128)."""
    return data.mem.line


def leaf_type(data: ArmLpaeIoPgtable, lvl: int) -> int:
    """The descriptor type `iopte_leaf` accepts at `lvl` for this format."""
    if lvl == ARM_LPAE_MAX_LEVELS - 1 and data.iop.fmt != "mali":
        return ARM_LPAE_PTE_TYPE_PAGE
    return ARM_LPAE_PTE_TYPE_BLOCK


def no_warn(data: ArmLpaeIoPgtable) -> bool:
    return bool(data.iop.cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN)


__all__ = [
    "ARM_LPAE_BLOCK_SIZE", "ARM_LPAE_GRANULE", "ARM_LPAE_LVL_IDX", "ARM_LPAE_LVL_SHIFT",
    "ARM_LPAE_MAX_LEVELS", "ARM_LPAE_PGD_IDX", "ARM_LPAE_PGD_SIZE", "ARM_LPAE_PTES_PER_TABLE",
    "ARM_LPAE_PTE_SW_SYNC", "ARM_LPAE_PTE_TYPE_BLOCK", "ARM_LPAE_PTE_TYPE_PAGE",
    "ARM_LPAE_PTE_TYPE_TABLE", "EINVAL", "ERANGE", "cache_line_size", "leaf_type", "EIO",
    "IO_PGTABLE_QUIRK_ARM_TTBR1", "Ptep",
    "WARN_ON", "WARN_ON_MANY", "arm_lpae_max_entries", "arm_lpae_sync_pte", "c_int",
    "io_pgtable_ops_to_data",
    "iopte_deref", "iopte_leaf", "iopte_table", "iopte_type", "min_t_int", "min_t_ulong",
    "no_warn", "pgd", "s64", "sar64", "size_t", "sync_map_failpoint", "u64", "ulong",
]

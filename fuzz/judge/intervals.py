"""A set of half-open u64 intervals (IOVA ranges the caller has synced)."""

from __future__ import annotations

import bisect


class IntervalSet:
    def __init__(self) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []

    def add(self, lo: int, hi: int) -> None:
        if lo >= hi:
            return
        i = bisect.bisect_left(self._hi, lo)
        j = bisect.bisect_right(self._lo, hi)
        if i < j:
            lo, hi = min(lo, self._lo[i]), max(hi, self._hi[j - 1])
        self._lo[i:j] = [lo]
        self._hi[i:j] = [hi]

    def remove(self, lo: int, hi: int) -> None:
        if lo >= hi:
            return
        i = bisect.bisect_right(self._hi, lo)
        j = bisect.bisect_left(self._lo, hi)
        keep_lo, keep_hi = [], []
        for a, b in zip(self._lo[i:j], self._hi[i:j], strict=True):
            if a < lo:
                keep_lo.append(a)
                keep_hi.append(lo)
            if b > hi:
                keep_lo.append(hi)
                keep_hi.append(b)
        self._lo[i:j] = keep_lo
        self._hi[i:j] = keep_hi

    def __contains__(self, x: int) -> bool:
        i = bisect.bisect_right(self._lo, x) - 1
        return i >= 0 and x < self._hi[i]

    def __iter__(self):
        return iter(zip(self._lo, self._hi, strict=True))

    def __repr__(self) -> str:
        return "IntervalSet(" + ", ".join(f"[{a:#x},{b:#x})" for a, b in self) + ")"


U64 = (1 << 64) - 1


def request_pieces(iova: int, size: int) -> list[tuple[int, int]]:
    """The IOVAs of a request (`iova`, `size`), both u64, as inclusive [lo, hi] pieces: one,
    or two when iova + size wraps past 2^64 (the kernel's u64 arithmetic then continues at 0,
    and so do the iommu core's loops)."""
    if not size:
        return []
    if size > U64:                   # (a sum of segment lengths): every IOVA
        return [(0, U64)]
    end = iova + size - 1
    if end <= U64:
        return [(iova, end)]
    return [(iova, U64), (0, end - (U64 + 1))]


def input_region(ias: int, ttbr1: bool) -> tuple[int, int]:
    """The IOVAs a table can translate, inclusive: [0, 2^ias) for TTBR0, the top 2^ias of the
    address space for TTBR1 (arm_lpae_map_pages' `iaext` test)."""
    return ((U64 + 1 - (1 << ias), U64) if ttbr1 else (0, (1 << ias) - 1))


def clip_pieces(pieces: list[tuple[int, int]],
                region: tuple[int, int]) -> list[tuple[int, int]]:
    """The parts of `pieces` inside `region` (all inclusive)."""
    r0, r1 = region
    return [(max(a, r0), min(b, r1)) for a, b in pieces if a <= r1 and b >= r0]

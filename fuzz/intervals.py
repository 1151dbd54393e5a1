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

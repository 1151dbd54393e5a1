"""Fault injection, in the manner of the kernel's `fail_page_alloc`/`should_fail()`.

A failpoint is armed as "fail the Nth hit of SITE with errno E".  It fires once and disarms,
so a scenario reads like a kernel fault-injection run with `times=1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cint import EIO, ENOMEM

#: Sites and the errno each returns by default.
SITES = {"alloc": ENOMEM, "sync_map": EIO}


@dataclass
class Armed:
    nth: int
    err: int


@dataclass
class Failpoints:
    armed: dict[str, Armed] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    fired: list[tuple[str, int]] = field(default_factory=list)

    def arm(self, site: str, nth: int = 1, err: int | None = None) -> None:
        if site not in SITES:
            raise KeyError(site)
        if nth < 1:
            raise ValueError("nth counts from 1")
        self.armed[site] = Armed(nth, -SITES[site] if err is None else err)
        self.hits[site] = 0

    def should_fail(self, site: str) -> int:
        """Called at the site; returns the (negative) errno to fail with, or 0."""
        a = self.armed.get(site)
        if a is None:
            return 0
        self.hits[site] = self.hits.get(site, 0) + 1
        if self.hits[site] < a.nth:
            return 0
        del self.armed[site]
        self.fired.append((site, a.err))
        return a.err

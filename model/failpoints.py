"""Fault injection, in the manner of the kernel's `fail_page_alloc`/`should_fail()`.

A failpoint is armed as "fail the Nth hit of SITE (counting from when it is armed) with errno
E".  It fires once and disarms, as a kernel fault-injection run with `times=1`.  Hits are counted
whether or not anything is armed, so an observer can tell whether a walk went on after the
failure it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cint import EIO, ENOMEM

#: Sites and the errno each returns by default.
SITES = {"alloc": ENOMEM, "sync_map": EIO}


@dataclass
class Armed:
    at_hit: int          # absolute hit number that fails
    err: int


@dataclass
class Fired:
    site: str
    err: int
    hit: int


@dataclass
class Failpoints:
    armed: dict[str, Armed] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    fired: list[Fired] = field(default_factory=list)

    def arm(self, site: str, nth: int = 1, err: int | None = None) -> None:
        if site not in SITES:
            raise KeyError(site)
        if nth < 1:
            raise ValueError("nth counts from 1")
        self.armed[site] = Armed(self.hits.get(site, 0) + nth,
                                 -SITES[site] if err is None else err)

    def should_fail(self, site: str) -> int:
        """Called at the site; returns the (negative) errno to fail with, or 0."""
        hit = self.hits[site] = self.hits.get(site, 0) + 1
        a = self.armed.get(site)
        if a is None or hit < a.at_hit:
            return 0
        del self.armed[site]
        self.fired.append(Fired(site, a.err, hit))
        return a.err

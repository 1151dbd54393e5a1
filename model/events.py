"""WARN/BUG and memory-safety events, recorded in order as the kernel would print them.

The kernel keeps running after WARN_ON, so the model records an `Event` and the caller goes on.
Memory-safety events (out-of-bounds, use-after-free) have no kernel counterpart: on real hardware
they would corrupt memory silently, which is exactly why the model notes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import KernelBug

#: Event kinds.  WARN/WARN_ONCE/BUG are the kernel's; the rest are the model's own checks.
WARN = "WARN"
BUG = "BUG"
OOB_READ = "oob-read"
OOB_WRITE = "oob-write"
OOB_CLEAN = "oob-clean"
UAF_READ = "uaf-read"
UAF_WRITE = "uaf-write"
UAF_CLEAN = "uaf-clean"
BAD_POINTER = "bad-pointer"   # the CPU dereferenced a table PTE that points at no table
UBSAN = "ubsan"               # a C world's code ran into undefined behaviour (-fsanitize=...)
#: The driver layer handed io-pgtable a call upstream is known to mishandle (driver.py): the
#: root cause of what follows, when something does (fuzz.judge.oracles names `upstream`
#: findings so).
UPSTREAM_CAUSE = "upstream-cause"

MEMORY_KINDS = frozenset({OOB_READ, OOB_WRITE, OOB_CLEAN, UAF_READ, UAF_WRITE, UAF_CLEAN,
                          BAD_POINTER})


@dataclass(frozen=True)
class Event:
    """`count` > 1 stands for that many identical events in a row (a WARN in a loop)."""

    kind: str
    site: str
    detail: str = ""
    count: int = 1

    def __repr__(self) -> str:
        times = f" x{self.count}" if self.count != 1 else ""
        return f"<{self.kind}{times} {self.site}{' ' + self.detail if self.detail else ''}>"


@dataclass
class EventLog:
    """Append-only event list plus the once-per-boot state of WARN_ONCE sites."""

    events: list[Event] = field(default_factory=list)
    _warned_once: set[str] = field(default_factory=set)

    def warn_on(self, cond: bool, site: str, detail: str = "") -> bool:
        """`WARN_ON(cond)`: record when true, return cond (as the C macro evaluates to it)."""
        if cond:
            self.events.append(Event(WARN, site, detail))
        return cond

    def warn_many(self, count: int, site: str, detail: str = "") -> None:
        """`count` consecutive WARN_ON()s that fired at one site (a vectorised loop)."""
        if count > 0:
            self.events.append(Event(WARN, site, detail, count))

    def warn_once(self, cond: bool, site: str, detail: str = "") -> bool:
        if cond and site not in self._warned_once:
            self._warned_once.add(site)
            self.events.append(Event(WARN, site, detail))
        return cond

    def bug_on(self, cond: bool, site: str, detail: str = "") -> None:
        if cond:
            self.events.append(Event(BUG, site, detail))
            raise KernelBug(site, detail)

    def record(self, kind: str, site: str, detail: str = "") -> None:
        self.events.append(Event(kind, site, detail))

    def since(self, mark: int) -> list[Event]:
        return self.events[mark:]

    def mark(self) -> int:
        return len(self.events)

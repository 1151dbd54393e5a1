"""One exception root for everything iopgfuzz raises on purpose.

Each error says what went wrong and what to do about it.  Kernel behaviour is never an
exception: a WARN is an event, an error is a return value.  The single exception that models
kernel behaviour is `KernelBug`, because `BUG_ON` really does stop the kernel.
"""

from __future__ import annotations


class IopgfuzzError(Exception):
    """Root of every deliberate iopgfuzz error."""


class ConfigRejected(IopgfuzzError):
    """The kernel refuses this configuration (its alloc function returns NULL).

    `reason` gives the kernel's check in words so that a user can fix the config.
    """

    def __init__(self, reason: str):
        super().__init__(f"configuration refused: {reason}")
        self.reason = reason


class KernelBug(IopgfuzzError):
    """A `BUG_ON` fired: the modelled kernel has crashed and this world cannot continue."""

    def __init__(self, site: str, detail: str = ""):
        super().__init__(f"BUG_ON at {site}" + (f": {detail}" if detail else ""))
        self.site = site
        self.detail = detail


class WorldCrashed(IopgfuzzError):
    """An operation was requested from a world whose kernel already hit BUG_ON."""


class BudgetExhausted(IopgfuzzError):
    """The per-world work budget (entries written or allocated) ran out.

    Not a kernel behaviour: a fuzzing guard so that no input can take unbounded time.  The
    executor stops the scenario and judges nothing about the op that ran out."""

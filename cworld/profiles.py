"""Which of the model's kernel-version switches a kernel tree's io-pgtable-arm.c needs.

The model targets v6.17/v6.18 by default.  Where an older (or newer) kernel behaves
differently, the model has a switch (docs/model.md "Kernel-version switches"), and this module
says how to set each for a tree's version, so that a Python world paired with a C world (in
the executor, in `fidelity`) models the same kernel as the C.  The scenario's own config is
not changed on disk: the adjustment is made where the worlds are built.
"""

from __future__ import annotations

from model.config import CONCAT_LEGACY, CONCAT_MANDATORY, Config


def parse_version(version: str | None) -> tuple[int, int, int]:
    """(major, minor, sublevel) of "6.12.117", "6.18.0-rc1"; (0, 0, 0) when unknown."""
    if not version:
        return (0, 0, 0)
    parts = [*version.split("-")[0].split("."), "0", "0"]
    try:
        return int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return (0, 0, 0)


def switches_for(version: str | None) -> dict:
    """The model's kernel-version switches as the kernel `version` has them: every switch, set
    both ways, so that a scenario that pins one (`split=1` for 6.12, say) is modelled as that
    tree behaves when it runs against it.  {} for an unknown version."""
    v = parse_version(version)
    if v == (0, 0, 0):
        return {}
    return {
        # 33729a5fc0ca (v6.13) removed the split of a block on a partial unmap
        "split_blk_unmap": v < (6, 13, 0),
        # 4dcac8407fe1 (v6.14): the mandatory stage-2 concatenation rule
        "concat": CONCAT_LEGACY if v < (6, 14, 0) else CONCAT_MANDATORY,
        # __arm_lpae_unmap returned (size_t)-ENOENT for a hole from v6.17 until the fix
        # 374e7af67d9d (v6.19-rc, backported to v6.18.8)
        "enoent_bug": (6, 17, 0) <= v < (6, 18, 8),
        # no IO_PGTABLE_QUIRK_NO_WARN before v6.17; the quirk sets of v6.12 (6.13 to 6.16
        # accept S2FWB at stage 2, which the model does not tell apart: docs/c-world.md)
        "kernel": "6.12" if v < (6, 17, 0) else "6.17",
    }


def model_config_for_tree(config: Config, version: str | None) -> Config:
    changes = {k: v for k, v in switches_for(version).items() if getattr(config, k) != v}
    return config.with_(**changes) if changes else config

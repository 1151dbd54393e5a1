"""Sync variants: what a version of the patch changes in io-pgtable and in the driver.

A variant is a small object with three things (see docs/variants.md):

* `defer_sync_pte`: whether `__arm_lpae_init_pte` skips the leaf clean (PATCH 1/2's flag);
* `io_pgtable_iotlb_sync_map(data)`: the io-pgtable op to install, or None;
* `driver_iotlb_sync_map(pgtbl_ops)`: the driver's `iotlb_sync_map`, or None.
"""

from __future__ import annotations

from .base import Variant
from .reference import Reference

BUILTIN = {"reference": Reference}


def get_variant(name: str) -> Variant:
    try:
        return BUILTIN[name]()
    except KeyError:
        raise KeyError(f"unknown variant {name!r} (built in: {', '.join(BUILTIN)})") from None


__all__ = ["Variant", "Reference", "BUILTIN", "get_variant"]

"""Sync variants: what a version of the patch changes in io-pgtable and in the driver.

A variant is a small object with three things (see docs/variants.md):

* `defer_sync_pte`: whether `__arm_lpae_init_pte` skips the leaf clean (PATCH 1/2's flag);
* `io_pgtable_iotlb_sync_map(data)`: the io-pgtable op to install, or None;
* `driver_iotlb_sync_map(pgtbl_ops)`: the driver's `iotlb_sync_map`, or None.
"""

from __future__ import annotations

from .base import Variant
from .fixed import Fixed
from .reference import Reference
from .v1 import V1, V1Review

BUILTIN = {"reference": Reference, "v1": V1, "v1-review": V1Review, "fixed": Fixed}


def get_variant(name: str) -> Variant:
    try:
        return BUILTIN[name]()
    except KeyError:
        raise KeyError(f"unknown variant {name!r} (built in: {', '.join(BUILTIN)})") from None


__all__ = ["Variant", "Reference", "V1", "V1Review", "Fixed", "BUILTIN", "get_variant"]

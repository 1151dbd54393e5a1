"""`reference`: upstream v6.17 behaviour.  Every PTE write is cleaned at once; neither
io-pgtable nor the driver has an `iotlb_sync_map`."""

from __future__ import annotations

from .base import Variant


class Reference(Variant):
    name = "reference"
    description = "upstream v6.17: every PTE write cleaned at once, no iotlb_sync_map"

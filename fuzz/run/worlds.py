"""Which world runs a variant: the Python model's, or the one the variant builds (a C world).

The one place that knows the concrete world classes; the executor and the oracles see only
`model.interface.WorldInterface`.
"""

from __future__ import annotations

import functools
import os

from model import Reference, Variant, World
from model.interface import WorldInterface

__all__ = ["REFERENCE_ENV", "default_reference", "make_world", "paired_kernel_version"]

#: Environment variable naming the reference world (`--reference`): unset or "model" for the
#: model's Reference, "c" for the kernel C without patches, or any variant spec.
REFERENCE_ENV = "IOPGFUZZ_REFERENCE"


def default_reference() -> Variant:
    """The reference variant this process runs against (see REFERENCE_ENV)."""
    return _reference_for(os.environ.get(REFERENCE_ENV, "") or "model")


@functools.lru_cache(maxsize=4)
def _reference_for(spec: str) -> Variant:
    if spec in ("model", "reference"):
        return Reference()
    from .plugins import load_variant
    return load_variant("c:upstream" if spec == "c" else spec)


def make_world(variant: Variant, config, budget: int | None,
               kernel_version: str | None = None) -> WorldInterface:
    """A world for `variant`: the model's, or whatever the variant builds (a C world).
    A model world paired with a C world models the C's kernel: `kernel_version` sets the
    model's kernel-version switches (cworld.profiles)."""
    factory = getattr(variant, "make_world", None)
    if factory is not None:
        return factory(config, budget)
    if kernel_version is not None:
        from cworld.profiles import model_config_for_tree
        config = model_config_for_tree(config, kernel_version)
    return World(config, variant, budget)


def paired_kernel_version(*variants: Variant) -> str | None:
    """The kernel version of the first C world among `variants`, if any."""
    for v in variants:
        version = getattr(v, "kernel_version", None)
        if version:
            return version
    return None

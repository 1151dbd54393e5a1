"""Loading a variant by name: a built-in (`v1`), a file (`path/to/file.py:Name`) or a module
(`pkg.mod:Name`).  `Name` may be a `Variant` subclass, an instance, or a no-argument factory.
Every failure is a `VariantLoadError` that says what was tried and how to fix it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from model.errors import IopgfuzzError
from model.variants import BUILTIN, Variant


class VariantLoadError(IopgfuzzError):
    pass


def load_variant(spec: str) -> Variant:
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if spec.startswith("c:"):
        return _load_c_variant(spec)
    if ":" not in spec:
        raise VariantLoadError(
            f"unknown variant {spec!r}: use a built-in ({', '.join(BUILTIN)}), "
            f"path/to/file.py:Name or package.module:Name")
    where, _, name = spec.rpartition(":")
    if not name.isidentifier():
        raise VariantLoadError(f"variant {spec!r}: {name!r} is not a Python name")
    module = _import_file(where, spec) if where.endswith(".py") else _import_module(where, spec)
    if not hasattr(module, name):
        have = [n for n in dir(module) if isinstance(getattr(module, n), type)
                and issubclass(getattr(module, n), Variant) and getattr(module, n) is not Variant]
        raise VariantLoadError(f"variant {spec!r}: {where} has no {name!r}"
                               + (f" (variants there: {', '.join(have)})" if have else ""))
    obj = getattr(module, name)
    if obj is Variant:
        raise VariantLoadError(f"variant {spec!r}: {name} is the base class itself; name your "
                               f"subclass of it")
    try:
        variant = obj() if callable(obj) and not isinstance(obj, Variant) else obj
    except Exception as e:  # noqa: BLE001 - the plugin's own constructor
        raise VariantLoadError(f"variant {spec!r}: constructing {name} raised "
                               f"{type(e).__name__}: {e}") from None
    if not isinstance(variant, Variant):
        raise VariantLoadError(f"variant {spec!r}: {name} is a {type(variant).__name__}, not a "
                               f"model.variants.Variant (subclass it; see docs/variants.md)")
    if not getattr(variant, "name", None) or variant.name == "base":
        variant.name = name
    return variant


def _load_c_variant(spec: str) -> Variant:
    """`c:upstream`, `c:PATCH[,PATCH...][@driver]`: the kernel C, built (cworld.variant)."""
    from cworld.variant import parse_c_spec
    try:
        variant = parse_c_spec(spec)
        variant.built()          # build errors surface here, once, not as findings per input
        return variant
    except IopgfuzzError as e:
        raise VariantLoadError(f"variant {spec!r}: {e}") from None


def _import_file(path: str, spec: str):
    p = Path(path)
    if not p.is_file():
        raise VariantLoadError(f"variant {spec!r}: no file {path}")
    mod_name = f"iopgfuzz_plugin_{p.stem}"
    s = importlib.util.spec_from_file_location(mod_name, p)
    module = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = module
    try:
        s.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001
        del sys.modules[mod_name]
        raise VariantLoadError(f"variant {spec!r}: importing {path} failed at line "
                               f"{_plugin_line(e, p)}: {type(e).__name__}: {e}") from None
    return module


def _plugin_line(e: BaseException, path: Path) -> int | str:
    """The line of the plugin file itself where the import failed."""
    if isinstance(e, SyntaxError) and e.lineno is not None:
        return e.lineno
    here = path.resolve()
    lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__)
             if Path(fr.filename).resolve() == here]
    return lines[-1] if lines else "?"


def _import_module(name: str, spec: str):
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001
        raise VariantLoadError(f"variant {spec!r}: cannot import module {name}: "
                               f"{type(e).__name__}: {e}") from None

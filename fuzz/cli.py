"""The command line: a thin layer over functions that return exit codes.

Exit codes: 0 nothing found, 1 findings, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


def cmd_selfcheck(args: argparse.Namespace) -> int:
    """The kernel selftest matrix with a non-coherent walker, every cache-line size."""
    from model.selftest import run_all

    worst = EXIT_OK
    for line in args.lines:
        t0 = time.perf_counter()
        n, failures = run_all(line)
        dt = time.perf_counter() - t0
        print(f"selftest, line {line:>3}: {n} configurations, {len(failures)} failures "
              f"({dt:.2f} s)")
        for f in failures:
            print(f"  FAIL {f}")
        if failures:
            worst = EXIT_FINDINGS
    return worst


def cmd_replay(args: argparse.Namespace) -> int:
    from fuzz.ops import OpsSyntaxError
    from fuzz.plugins import VariantLoadError, load_variant
    from fuzz.replay import replay_file

    try:
        variant = load_variant(args.variant)
    except VariantLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    worst = EXIT_OK
    for path in args.files:
        try:
            code, text = replay_file(path, variant, args.json, args.strict)
        except OpsSyntaxError as e:
            print(f"error: {e}", file=sys.stderr)
            worst = max(worst, EXIT_BAD_INPUT)
            continue
        if len(args.files) > 1 and not args.json:
            print(f"== {path}")
        print(text, end="" if text.endswith("\n") else "\n")
        worst = max(worst, code)
    return worst


def cmd_campaign(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fuzz.campaign import Options, run_campaign
    from fuzz.ops import parse_config_filter
    from fuzz.plugins import VariantLoadError, load_variant

    try:
        load_variant(args.variant)
        parse_config_filter(args.config)
    except (VariantLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    opt = Options(variant=args.variant, seconds=args.time, jobs=args.jobs, config=args.config,
                  corpus=Path(args.corpus), crashes=Path(args.crashes), strict=args.strict,
                  stop_first=args.stop_first, seeds=not args.no_seeds,
                  libfuzzer=args.libfuzzer)
    code = run_campaign(opt)
    if args.coverage:
        from fuzz.coverage_report import coverage_report

        out = Path(args.crashes) / "coverage"
        n, pct = coverage_report(Path(args.corpus), out, args.variant)
        print(f"coverage: replayed {n} corpus inputs; {pct:.1f}% of model/ and fuzz/ "
              f"statements+branches; HTML in {out}/index.html")
    return code


def cmd_triage(args: argparse.Namespace) -> int:
    from fuzz.triage import load_buckets

    buckets = load_buckets(args.dir)
    if not buckets:
        print(f"no buckets in {args.dir}")
        return EXIT_OK
    print(f"{'kind':<22} {'count':>7}  signature / reproducer")
    for b in sorted(buckets, key=lambda b: (b["kind"], -b["count"])):
        print(f"{b['kind']:<22} {b['count']:>7}  {b['signature']}")
        print(f"{'':<32}{b['reproducer']}")
    return EXIT_FINDINGS


def cmd_bench(args: argparse.Namespace) -> int:
    from fuzz.bench import main as bench_main

    return bench_main()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("selfcheck", help="run the kernel selftest matrix on the model, "
                                         "non-coherent, checking what the SMMU reads")
    s.add_argument("--lines", type=int, nargs="+", default=[32, 64, 128],
                   help="cache-line sizes to run (default: 32 64 128)")
    s.set_defaults(func=cmd_selfcheck)
    r = sub.add_parser("replay", help="replay .ops inputs against a variant and the reference")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--variant", default="v1",
                   help="built-in name (reference, v1, v1-review, fixed), path/file.py:Name "
                        "or package.module:Name (default: v1)")
    r.add_argument("--json", action="store_true", help="print the JSON of design §6")
    r.add_argument("--strict", action="store_true",
                   help="efficiency findings (cmo-regression, redundant-clean) count too")
    r.set_defaults(func=cmd_replay)
    c = sub.add_parser("campaign", help="run an Atheris campaign (what ./run_fuzz.sh runs)")
    c.add_argument("--variant", default="v1")
    c.add_argument("--time", type=int, default=None, metavar="S",
                   help="seconds per worker (default: until interrupted)")
    c.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    c.add_argument("--config", default="", metavar="FILTER",
                   help='pin config keys, e.g. "fmt=arm64-s2,granule=4K" (default: all)')
    c.add_argument("--corpus", default="out/corpus", metavar="D")
    c.add_argument("--crashes", default="out/crashes", metavar="D")
    c.add_argument("--strict", action="store_true", help="efficiency findings are crashes")
    c.add_argument("--stop-first", action="store_true", help="stop at the first finding")
    c.add_argument("--coverage", action="store_true",
                   help="afterwards, replay the corpus under coverage.py into <crashes>/coverage")
    c.add_argument("--no-seeds", action="store_true",
                   help="start from the corpus folder alone (no corpus/differential seeds)")
    c.add_argument("libfuzzer", nargs="*", metavar="-- LIBFUZZER_FLAGS")
    c.set_defaults(func=cmd_campaign)
    t = sub.add_parser("triage", help="list the buckets of a crashes folder")
    t.add_argument("dir", nargs="?", default="out/crashes")
    t.set_defaults(func=cmd_triage)
    b = sub.add_parser("bench", help="model benchmark: map and check 1 GiB of 4K pages")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["selfcheck", *(argv or [])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

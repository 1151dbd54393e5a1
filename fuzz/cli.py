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

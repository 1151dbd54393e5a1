"""The command line: a thin layer over functions that return exit codes.

Exit codes: 0 nothing found, 1 findings, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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


def _os_error(e: OSError) -> str:
    """`FILE: cannot write: WHY` for an error writing an output file."""
    if e.filename is None:
        return str(e)
    return f"{e.filename}: cannot write: {e.strerror}"


def _variant_or_report(spec: str):
    """The variant `spec` names, or None after printing why it cannot be loaded."""
    from fuzz.run.plugins import VariantLoadError, load_variant

    try:
        return load_variant(spec)
    except VariantLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def cmd_replay(args: argparse.Namespace) -> int:
    from fuzz.lang.ops import OpsSyntaxError
    from fuzz.repro.replay import replay_file

    variant = _variant_or_report(args.variant)
    if variant is None:
        return EXIT_BAD_INPUT
    worst = EXIT_OK
    for path in args.files:
        try:
            code, text, error = replay_file(path, variant, args.json, args.strict)
        except OpsSyntaxError as e:
            print(f"error: {e}", file=sys.stderr)
            worst = max(worst, EXIT_BAD_INPUT)
            continue
        if error:
            print(f"error: {error}", file=sys.stderr)
        if len(args.files) > 1 and not args.json:
            print(f"== {path}")
        print(text, end="" if text.endswith("\n") else "\n")
        worst = max(worst, code)
    return worst


def cmd_campaign(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fuzz.campaigns.campaign import Options, run_campaign
    from fuzz.lang.ops import parse_config_filter
    from fuzz.run.plugins import VariantLoadError, load_variant

    try:
        load_variant(args.variant)
        parse_config_filter(args.config)
    except (VariantLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for option, folder in (("--corpus", args.corpus), ("--crashes", args.crashes)):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = "not a folder" if Path(folder).exists() else e.strerror
            print(f"error: {option} {folder}: {why}", file=sys.stderr)
            return EXIT_BAD_INPUT
    opt = Options(variant=args.variant, seconds=args.time, jobs=args.jobs, config=args.config,
                  corpus=Path(args.corpus), crashes=Path(args.crashes), strict=args.strict,
                  stop_first=args.stop_first, seeds=not args.no_seeds,
                  instrument=args.instrument, libfuzzer=args.libfuzzer)
    code = run_campaign(opt)
    if args.coverage:
        from fuzz.tools.coverage_report import coverage_report

        out = Path(args.crashes) / "coverage"
        n, pct = coverage_report(Path(args.corpus), out, args.variant)
        print(f"coverage: replayed {n} corpus inputs; {pct:.1f}% of model/ and fuzz/ "
              f"statements+branches; HTML in {out}/index.html")
    return code


def cmd_triage(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fuzz.repro.triage import scan_buckets, secondary_lines

    root = Path(args.dir)
    if not root.is_dir():
        why = "no such folder" if not root.exists() else "not a folder"
        print(f"error: {root}: {why} (triage reads a crashes folder, e.g. out/crashes)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    scan = scan_buckets(root)
    for d in scan.incomplete:
        print(f"note: ignoring {d}: incomplete bucket, no report.txt (an interrupted write)",
              file=sys.stderr)
    for problem in scan.problems:
        print(f"error: {problem}", file=sys.stderr)
    buckets = scan.buckets
    if not buckets:
        print(f"no buckets in {root}")
    else:
        print(f"{'kind':<22} {'count':>7}  signature / reproducer")
        for b in sorted(buckets, key=lambda b: (b["kind"], -b["count"], b["signature"])):
            print(f"{b['kind']:<22} {b['count']:>7}  {b['signature']}")
            print(f"{'':<32}{b['reproducer']}")
            for line in secondary_lines(b, 32):
                print(line)
    if scan.problems:
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if buckets else EXIT_OK


def cmd_minimize(args: argparse.Namespace) -> int:
    from fuzz.lang.ops import OpsSyntaxError
    from fuzz.repro.minimize import minimize_file, plural
    from fuzz.run.plugins import VariantLoadError

    try:
        res, _ = minimize_file(args.file, args.output, args.variant, args.signature,
                               args.max_replays)
    except OSError as e:
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OpsSyntaxError, VariantLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"signature: {res.signature}")
    print(f"{plural(len(res.original.ops), 'op')} -> {plural(len(res.scenario.ops), 'op')} "
          f"({plural(res.replays, 'replay')}"
          + ("; replay budget exhausted, may not be minimal" if res.exhausted else "")
          + f"); wrote {args.output}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fuzz.lang.ops import OpsSyntaxError
    from fuzz.repro.export import ExportError, export_file
    from fuzz.repro.triage import atomic_write
    from fuzz.run.plugins import VariantLoadError

    try:
        text, warnings = export_file(args.file, args.format, args.variant)
        if args.output:
            atomic_write(Path(args.output), text)
    except OSError as e:
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OpsSyntaxError, VariantLoadError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from fuzz.tools.bench import main as bench_main
    from fuzz.tools.bench import profile_generated

    if args.profile:
        profile_generated(variant=args.variant)
        return EXIT_OK
    if args.seeds:
        from fuzz.tools.bench import main_seeds
        return main_seeds(args.variant, args.seconds, args.atheris_runs, args.layers)
    if args.corpus:
        from fuzz.tools.bench import main_corpus
        from model.errors import IopgfuzzError
        try:
            return main_corpus(args.corpus, args.variant, args.seconds, args.budget)
        except (OSError, ValueError, IopgfuzzError) as e:      # (a .ops file that does not parse)
            print(f"bench --corpus: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return bench_main()


def cmd_hypothesis(args: argparse.Namespace) -> int:
    """A Hypothesis-only campaign (no coverage guidance), the baseline for Atheris."""
    from fuzz.campaigns.hypo_campaign import print_summary, run_hypothesis_campaign, write_json

    variant = _variant_or_report(args.variant)
    if variant is None:
        return EXIT_BAD_INPUT
    camp = run_hypothesis_campaign(variant, args.time, args.seed, args.max_ops)
    print_summary(camp)
    if args.output:
        write_json(camp, args.output)
        print(f"summary written to {args.output}")
    from fuzz.judge.findings import is_crash
    kinds = {b.kind for b in camp.buckets.values() if is_crash(b.kind, args.strict)}
    return EXIT_FINDINGS if kinds else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """The CMO report: lines cleaned and clean calls per workload and variant."""
    from fuzz.tools.report import run_cli

    return run_cli(args.variant, args.workload, args.config, args.png, args.no_png, args.json,
                   args.format, args.ops_dir)


def cmd_cflite_seeds(args: argparse.Namespace) -> int:
    """The seed corpora of the ClusterFuzzLite targets: <out>/<target>_seed_corpus.zip."""
    from pathlib import Path

    from fuzz.campaigns.cflite import TARGETS, write_seed_corpora

    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(f"error: unknown target(s) {', '.join(unknown)} (targets: {', '.join(TARGETS)})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        counts = write_seed_corpora(Path(args.out), args.targets or None)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for name, n in counts.items():
        print(f"{Path(args.out) / (name + '_seed_corpus.zip')}: {n} seeds")
    return EXIT_OK


def cmd_cflite_dict(args: argparse.Namespace) -> int:
    """The libFuzzer dictionary for the binary op language, derived from fuzz/lang/codec.py."""
    from pathlib import Path

    from fuzz.campaigns.cflite import format_dictionary
    from fuzz.repro.triage import atomic_write

    text = format_dictionary()
    if args.check:
        try:
            same = Path(args.check).read_text() == text
        except OSError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if not same:
            print(f"{args.check} is stale: run `python -m fuzz cflite-dict -o {args.check}`",
                  file=sys.stderr)
            return EXIT_FINDINGS
        print(f"{args.check} is up to date")
    elif args.output:
        atomic_write(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_fidelity(args: argparse.Namespace) -> int:
    """The model against the kernel C: reference against upstream, a model variant against
    the C with the patches; exit 0 only when no difference is left unexplained."""
    from cworld.variant import CVariant
    from fuzz.tools.fidelity import Pairing, format_report, run_fidelity, scenario_files
    from model.errors import IopgfuzzError
    from model.variants import Reference

    model_variant = _variant_or_report(args.model_variant)
    if model_variant is None:
        return EXIT_BAD_INPUT
    try:
        upstream = CVariant((), kernel_tree=args.kernel_tree)
        upstream.built()
        pairings = [Pairing("reference", Reference(), upstream)]
        if args.patch:
            patched = CVariant(tuple(args.patch), args.driver, kernel_tree=args.kernel_tree)
            patched.built()
            pairings.append(Pairing("variant", model_variant, patched))
    except IopgfuzzError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    root = Path(__file__).resolve().parent.parent
    files = [Path(f) for f in args.files] if args.files else scenario_files(root)
    print(f"fidelity: kernel {upstream.tree.describe()}; "
          f"{len(files)} files + {args.random} random scenarios (seed {args.seed})",
          file=sys.stderr)

    def progress(done, total, ndiff):
        print(f"  {done}/{total} scenarios, {ndiff} difference(s)", file=sys.stderr)

    report = run_fidelity(pairings, upstream, files, args.random, args.seed,
                          minimize=not args.no_minimize, progress=progress)
    print(format_report(report), end="")
    return EXIT_OK if report.ok else EXIT_FINDINGS


def cmd_kunit(args: argparse.Namespace) -> int:
    """Build a KUnit test (an exported one, or any test of io-pgtable-arm-selftests.c) with the
    KUnit stand-in and the variant's kernel C, run it: 0 passed, 1 failed, 2 does not build."""
    from cworld.kunit import KunitError, _size, run
    from model.errors import IopgfuzzError

    try:
        line = _size(args.line) if args.line else None
        page_size = _size(args.page_size) if args.page_size else None
        result = run(args.test, args.variant, kernel_tree=args.kernel_tree, compiler=args.cc,
                     line=line, page_size=page_size)
    except (KunitError, IopgfuzzError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.code == EXIT_BAD_INPUT:
        print(f"error: {args.test}: does not build: {result.output}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(result.output)
    print(f"kunit: {args.test} {'passed' if result.code == 0 else 'FAILED'} on {args.variant}",
          file=sys.stderr)
    return result.code


def world_options() -> argparse.ArgumentParser:
    """Options every command that runs worlds shares: which reference, which kernel tree."""
    w = argparse.ArgumentParser(add_help=False)
    g = w.add_argument_group("worlds")
    g.add_argument("--reference", default=None, metavar="R",
                   help="the reference world: model (default), c (the kernel tree's C, "
                        "unpatched) or any variant spec")
    g.add_argument("--kernel-tree", default=None, metavar="DIR",
                   help="kernel tree for c: worlds (default: $IOPGFUZZ_KERNEL_TREE, else "
                        "Debian's linux-source-6.12 in the cache)")
    g.add_argument("--cc", default=None, choices=("gcc", "clang"),
                   help="compiler for c: worlds (default: $IOPGFUZZ_CC, else gcc)")
    return w


def apply_world_options(args: argparse.Namespace) -> str | None:
    """Put the world options in the environment (campaign workers inherit it) and load the
    reference once, so that a bad tree, patch or build is one clear error, not a finding
    per input.  Returns the error message, or None."""
    import os

    from fuzz.run.worlds import REFERENCE_ENV, default_reference
    from model.errors import IopgfuzzError

    for name, env in (("kernel_tree", "IOPGFUZZ_KERNEL_TREE"), ("cc", "IOPGFUZZ_CC"),
                      ("reference", REFERENCE_ENV)):
        value = getattr(args, name, None)
        if value:
            if name == "kernel_tree":       # relative to run_fuzz.sh's caller, if it says
                value = str((Path(os.environ.get("IOPGFUZZ_CWD", ".")) / value).resolve())
            os.environ[env] = value
    try:
        default_reference()
    except IopgfuzzError as e:
        return f"--reference: {e}"
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    sub = p.add_subparsers(dest="command")
    wopt = world_options()
    s = sub.add_parser("selfcheck", help="run the kernel selftest matrix on the model, "
                                         "non-coherent, checking what the SMMU reads")
    s.add_argument("--lines", type=int, nargs="+", default=[32, 64, 128],
                   help="cache-line sizes to run (default: 32 64 128)")
    s.set_defaults(func=cmd_selfcheck)
    r = sub.add_parser("replay", parents=[wopt],
                        help="replay .ops inputs against a variant and the reference")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--variant", default="v1",
                   help="built-in name (reference, v1, v1-review, fixed), path/file.py:Name "
                        "or package.module:Name (default: v1)")
    r.add_argument("--json", action="store_true", help="print the JSON of design §6")
    r.add_argument("--strict", action="store_true",
                   help="efficiency findings (cmo-regression, redundant-clean) count too")
    r.set_defaults(func=cmd_replay)
    c = sub.add_parser("campaign", parents=[wopt],
                        help="run an Atheris campaign (what ./run_fuzz.sh runs)")
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
    c.add_argument("--instrument", choices=("auto", "model", "walker", "c"), default="auto",
                   help="coverage of the whole model and the oracles (model), of the "
                        "variants' walkers and the oracles only (walker: faster, less "
                        "guidance), or of the C worlds' edges alone (c); auto (default): c "
                        "when both worlds are C worlds, else model")
    c.add_argument("libfuzzer", nargs="*", metavar="-- LIBFUZZER_FLAGS")
    c.set_defaults(func=cmd_campaign)
    t = sub.add_parser("triage", help="list the buckets of a crashes folder")
    t.add_argument("dir", nargs="?", default="out/crashes")
    t.set_defaults(func=cmd_triage)
    m = sub.add_parser("minimize", parents=[wopt],
                        help="shrink an input while a finding signature stays")
    m.add_argument("file", metavar="FILE", help=".ops text or binary input")
    m.add_argument("-o", "--output", required=True, metavar="OUT.ops")
    m.add_argument("--variant", default="v1", help="as for replay (default: v1)")
    m.add_argument("--signature", default=None, metavar="SIG",
                   help="the signature to keep (default: the first correctness finding's, "
                        "else the first finding's)")
    m.add_argument("--max-replays", type=int, default=3000, metavar="N",
                   help="replay budget (default: 3000)")
    m.set_defaults(func=cmd_minimize)
    e = sub.add_parser("export", parents=[wopt],
                        help="turn an input into a pytest or KUnit regression test")
    e.add_argument("file", metavar="FILE", help=".ops text or binary input")
    e.add_argument("--format", required=True, choices=("pytest", "kunit"))
    e.add_argument("--variant", default="v1", help="as for replay (default: v1)")
    e.add_argument("-o", "--output", default=None, metavar="OUT",
                   help="write here (atomically) instead of to stdout")
    e.set_defaults(func=cmd_export)
    b = sub.add_parser("bench", parents=[wopt],
                        help="model benchmark: map and check 1 GiB of 4K pages")
    b.add_argument("--profile", action="store_true",
                   help="instead: cProfile 300 generated scenarios (seed 5)")
    b.add_argument("--seeds", action="store_true",
                   help="instead: exec/s over the seed corpus, uninstrumented and under Atheris")
    b.add_argument("--corpus", metavar="DIR", default=None,
                   help="instead: exec/s over a campaign's corpus folder (every input in turn, "
                        "uninstrumented, --seconds), its slowest inputs and the share of the "
                        "time in runs that ran out of work budget")
    b.add_argument("--budget", type=int, default=None, metavar="N",
                   help="--corpus: the work budget per world (default: the campaigns', "
                        "2^18); what a smaller one would buy")
    b.add_argument("--layers", action="store_true",
                   help="--seeds: exec/s of the variant world alone, of both worlds, and of the "
                        "full differential execution, uninstrumented and under each "
                        "instrumentation mode (--seconds each)")
    b.add_argument("--seconds", type=float, default=5.0,
                   help="--seeds, --corpus: uninstrumented run time (default: 5)")
    b.add_argument("--atheris-runs", type=int, default=200, metavar="N",
                   help="--seeds: runs per seed of the Atheris target (0: skip; default: 200)")
    b.add_argument("--variant", default="v1",
                   help="variant for --profile, --seeds and --corpus (default: v1)")
    b.set_defaults(func=cmd_bench)
    h = sub.add_parser("hypothesis", parents=[wopt],
                        help="a time-bounded Hypothesis-only campaign (no coverage "
                                          "guidance): time to the first finding of each kind")
    h.add_argument("--variant", default="v1")
    h.add_argument("--time", type=float, default=60.0, metavar="S", help="seconds (default: 60)")
    h.add_argument("--seed", type=int, default=0, metavar="N", help="Hypothesis seed (default: 0)")
    h.add_argument("--max-ops", type=int, default=12, metavar="N",
                   help="ops per scenario at most (default: 12)")
    h.add_argument("--strict", action="store_true", help="efficiency findings count too")
    h.add_argument("-o", "--output", default=None, metavar="OUT.json",
                   help="also write the summary as JSON")
    h.set_defaults(func=cmd_hypothesis)
    rp = sub.add_parser("report", parents=[wopt],
                        help="the CMO report: lines cleaned and clean calls of "
                                       "realistic workloads per variant, against the reference "
                                       "and the least possible (table, JSON, PNG)")
    rp.add_argument("--variant", action="append", default=None, metavar="V",
                    help="a variant to measure, repeatable (default: reference, v1, v1-review, "
                         "fixed); the reference is always measured as the baseline")
    rp.add_argument("--workload", action="append", default=None, metavar="NAME",
                    help="only this workload, repeatable (default: all; see docs/report.md)")
    rp.add_argument("--config", default="", metavar="FILTER",
                    help='config keys as for campaign, e.g. "granule=64K,line=128" (default: '
                         'arm64-s1 4K ias=48 oas=48 line=64, non-coherent)')
    rp.add_argument("--png", default=None, metavar="PATH",
                    help="write the chart here (default: out/report/cmo.png; needs the "
                         "'report' extra, matplotlib: an explicit --png without it is exit 2)")
    rp.add_argument("--no-png", action="store_true", help="no chart")
    rp.add_argument("--json", default=None, metavar="PATH", help="also write the numbers as JSON")
    rp.add_argument("--format", default="text", choices=("text", "markdown", "summary"),
                    help="text (default), markdown (the same table), or summary (Markdown, one "
                         "row per workload: lines / calls per variant)")
    rp.add_argument("--ops-dir", default=None, metavar="DIR",
                    help="also write each workload as an .ops file (for replay)")
    rp.set_defaults(func=cmd_report)
    fi = sub.add_parser("fidelity", parents=[wopt],
                        help="the Python model against the kernel C it transliterates")
    fi.add_argument("--patch", action="append", default=[], metavar="FILE",
                    help="also compare --model-variant with the C built with these patches "
                         "(repeatable; a patch may be quoted in a mail)")
    fi.add_argument("--model-variant", default="v1", metavar="V",
                    help="the model variant the patches are compared with (default: v1)")
    fi.add_argument("--driver", default="posted", choices=("posted", "review", "none"),
                    help="PATCH 2/2's half for the patched C (default: posted)")
    fi.add_argument("--random", type=int, default=1000, metavar="N",
                    help="random scenarios besides corpus/ and crashes/ (default: 1000)")
    fi.add_argument("--seed", type=int, default=0, metavar="S")
    fi.add_argument("--no-minimize", action="store_true", help="do not shrink reproducers")
    fi.add_argument("files", nargs="*", metavar="FILE",
                    help=".ops files (default: corpus/ and crashes/)")
    fi.set_defaults(func=cmd_fidelity)
    ku = sub.add_parser("kunit", help="build and run a KUnit test of io-pgtable-arm (e.g. "
                                      "an exported one) on the kernel C: 0 passed, 1 failed, "
                                      "2 does not build")
    ku.add_argument("test", metavar="TEST.c")
    ku.add_argument("--variant", default="c:upstream", metavar="SPEC",
                    help="c:upstream (default) or c:PATCH[,PATCH...][@posted|@review|@none]")
    ku.add_argument("--kernel-tree", default=None, metavar="DIR",
                    help="kernel tree (default: $IOPGFUZZ_KERNEL_TREE, else Debian's 6.12)")
    ku.add_argument("--cc", default=None, choices=("gcc", "clang"))
    ku.add_argument("--line", default=None, metavar="N",
                    help="cache line size (default: the test's `iopgfuzz kunit:` tag, else 64)")
    ku.add_argument("--page-size", default=None, metavar="N",
                    help="PAGE_SIZE, e.g. 64K (default: the test's tag, else 4K)")
    ku.set_defaults(func=cmd_kunit)
    cs = sub.add_parser("cflite-seeds", help="ClusterFuzzLite: write "
                                              "<OUT>/<target>_seed_corpus.zip from "
                                              "corpus/differential (what build.sh runs)")
    cs.add_argument("out", metavar="OUT", help="output folder ($OUT in build.sh)")
    cs.add_argument("targets", nargs="*", metavar="TARGET",
                    help="targets (default: all of fuzz.campaigns.cflite.TARGETS)")
    cs.set_defaults(func=cmd_cflite_seeds)
    cd = sub.add_parser("cflite-dict", help="ClusterFuzzLite: the libFuzzer dictionary derived "
                                             "from the binary codec")
    cd.add_argument("-o", "--output", default=None, metavar="FILE", help="write it here")
    cd.add_argument("--check", default=None, metavar="FILE",
                    help="exit 1 if FILE differs from what would be written")
    cd.set_defaults(func=cmd_cflite_dict)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["selfcheck", *(argv or [])])
    if hasattr(args, "reference"):
        error = apply_world_options(args)
        if error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

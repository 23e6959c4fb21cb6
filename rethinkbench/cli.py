"""The ``rethinkbench`` command: re-render reports, compare results for CI, manage the cache.

    rethinkbench report RESULTS.json [-o DIR]
    rethinkbench compare BASELINE.json CURRENT.json [--timing-factor 2.0]
    rethinkbench cache clear [--cache-dir DIR]
    rethinkbench cache info [--cache-dir DIR] [--json]
    rethinkbench list [--claims-dir DIR] [--json]
    rethinkbench --version

Exit status: 0 success; 1 ``compare`` found a regression; 2 bad input (usage error, missing or
malformed results file), with a one-line message naming the file on stderr.

Subcommands import their machinery lazily so that ``compare`` in CI does not pay for matplotlib,
and nothing here pays for torch beyond what ``import rethinkbench`` itself does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import rethinkbench   # lazy itself (PEP 562): no torch until a public name is used
from rethinkbench.base.errors import RethinkbenchError, UsageError

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2

DEFAULT_CACHE_DIR = ".rethinkbench-cache"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plan"] and argv[1:2] not in (["-h"], ["--help"]):
        # Everything after `plan` is pytest's, leading options too (`plan --scale paper`), which
        # argparse's REMAINDER refuses when they come first.
        return _plan(argparse.Namespace(pytest_args=argv[1:]))
    parser = _build_parser()
    args = parser.parse_args(argv)
    # Each command imports only its own layer, at its start: `compare` in CI stays torch-free.
    from rethinkbench.report.results_io import ResultsError

    try:
        return args.handler(args)
    except ResultsError as error:
        print(f"rethinkbench {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rethinkbench",
        description="Reports and regression checks for the rethinkbench claim suite "
                    "(run the claims themselves with `pytest claims/`).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser(
        "report", help="render the HTML report of a results.json",
        description="Render RESULTS.json (written by `pytest claims/`) to DIR/index.html, one "
                    "self-contained page; prints its path.")
    report.add_argument("results", type=Path, metavar="RESULTS.json")
    report.add_argument("-o", "--output-dir", type=Path, default=None, metavar="DIR",
                        help="where to write index.html (default: the folder of RESULTS.json)")
    report.set_defaults(handler=_report)

    compare = commands.add_parser(
        "compare", help="check CURRENT.json against BASELINE.json for regressions",
        description="Compare two results files. Exit 1 if a claim or item that was reproduced "
                    "is not any more (or is missing), a measurement moved beyond the tolerance "
                    "the baseline declares, or training on the same device kind got slower than "
                    "--timing-factor; exit 0 otherwise; exit 2 on bad input.")
    compare.add_argument("baseline", type=Path, metavar="BASELINE.json")
    compare.add_argument("current", type=Path, metavar="CURRENT.json")
    compare.add_argument("--timing-factor", type=_timing_factor, default=2.0, metavar="X",
                         help="fail when summed train time of runs trained in both files on the "
                              "same device kind is more than X times the baseline's "
                              "(a number >= 1; default: 2.0)")
    compare.add_argument("--all", action="store_true", dest="show_unchanged",
                         help="also list claims and items whose verdict did not change")
    compare.set_defaults(handler=_compare)

    plan = commands.add_parser(
        "plan", help="list the runs a pytest selection of claims needs and estimate their time",
        description="Run `pytest --plan PYTEST_ARGS` (default: claims/): execute the selected "
                    "claim tests only to record the runs they ask for, train nothing, and print "
                    "the runs, which are cached, and an estimate of the training time from "
                    "per-step costs measured on this device. Exit status is pytest's.")
    plan.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="arguments for pytest, e.g. claims/ --gpu -k random_labels")
    plan.set_defaults(handler=_plan)

    listing = commands.add_parser(
        "list", help="print every model, dataset, corruption, scale and claim name",
        description="Print the names a claim or a RunConfig may use: models and datasets (built "
                    "in, installed plugins, and the import-path forms), corruptions, scales, and "
                    "the claims of a claims directory with their ids (collected by pytest; nothing "
                    "trains).")
    listing.add_argument("--claims-dir", type=Path, default=Path("claims"), metavar="DIR",
                         help="where the claims are (default: claims/ in the current directory; "
                              "skipped with a note when it does not exist)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=_list)

    cache = commands.add_parser("cache", help="manage the results cache",
                                description="Manage the cache of trained runs.")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    clear = cache_commands.add_parser(
        "clear", help="delete every cached run",
        description="Delete every entry of the results cache. Only a directory the cache created "
                    "(it holds a CACHEDIR.TAG naming rethinkbench) is cleared, and only the "
                    "cache's own files in it; anything else is refused (exit 2).")
    clear.add_argument("--cache-dir", type=Path, default=Path(DEFAULT_CACHE_DIR), metavar="DIR",
                       help=f"the cache directory (default: {DEFAULT_CACHE_DIR})")
    clear.set_defaults(handler=_cache_clear)
    info = cache_commands.add_parser(
        "info", help="what the cache holds: runs and size, by model, dataset and scale",
        description="Count the cached runs and their size on disk, by model, dataset and scale "
                    "(read only).")
    info.add_argument("--cache-dir", type=Path, default=Path(DEFAULT_CACHE_DIR), metavar="DIR",
                      help=f"the cache directory (default: {DEFAULT_CACHE_DIR})")
    info.add_argument("--json", action="store_true", help="print the numbers as JSON")
    info.set_defaults(handler=_cache_info)
    return parser


def _report(args: argparse.Namespace) -> int:
    # matplotlib and Jinja2 come with the renderer: only this command pays for them
    from rethinkbench.report import write_report
    from rethinkbench.report.results_io import load_results

    results = load_results(args.results)
    out_dir = args.output_dir if args.output_dir is not None else args.results.parent
    try:
        path = write_report(results, out_dir)
    except OSError as error:
        print(f"rethinkbench report: error: cannot write the report to {out_dir}: "
              f"{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(path)
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    # torch-free: compare reads JSON only (a contract in pyproject.toml)
    from rethinkbench.report.compare import compare, load_results

    comparison = compare(load_results(args.baseline), load_results(args.current),
                         timing_factor=args.timing_factor)
    print(comparison.format_table(show_unchanged=args.show_unchanged))
    return EXIT_OK if comparison.ok else EXIT_REGRESSION


def _plan(args: argparse.Namespace) -> int:
    try:
        import pytest   # a dev dependency: only `plan` runs a pytest session
    except ImportError:
        print("rethinkbench plan: error: needs pytest (pip install -e \".[dev]\")", file=sys.stderr)
        return EXIT_BAD_INPUT
    pytest_args = list(args.pytest_args)
    # Default to claims/ unless a path or test id is given: an option's value ("--scale paper")
    # is no path, and without claims/ pytest would plan its testpaths (the harness's own tests).
    if not any(not a.startswith("-") and (Path(a.split("::")[0]).exists() or "::" in a) for a in pytest_args):
        pytest_args.insert(0, "claims/")
    return int(pytest.main(["--plan", "-q", "-p", "no:randomly", *pytest_args]))


def _list(args: argparse.Namespace) -> int:
    # the listing collects claims with pytest and names every model: torch and pytest load here
    from rethinkbench.suite.listing import format_listing, listing

    claims_dir = args.claims_dir if args.claims_dir.is_dir() else None
    try:
        data = listing(claims_dir)
    except RethinkbenchError as error:
        print(f"rethinkbench list: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(data, indent=1))
        return EXIT_OK
    print(format_listing(data))
    if claims_dir is None:
        print(f"\nclaims: no claims directory at {args.claims_dir} (run from a rethinkbench checkout "
              f"or pass --claims-dir DIR)")
    return EXIT_OK


def _cache_clear(args: argparse.Namespace) -> int:
    # Lazy: the cache module belongs to the training side of the package.
    from rethinkbench.engine.cache import ResultsCache

    try:
        removed = ResultsCache(args.cache_dir).clear()
    except UsageError as error:   # not a rethinkbench cache: nothing was deleted
        print(f"rethinkbench cache clear: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:      # e.g. a read-only cache directory
        print(f"rethinkbench cache clear: error: cannot clear the cache at {args.cache_dir}: "
              f"{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(removed, int):
        print(f"removed {removed} cached run{'s' if removed != 1 else ''} from {args.cache_dir}")
    else:
        print(f"cleared the cache at {args.cache_dir}")
    return EXIT_OK


def _cache_info(args: argparse.Namespace) -> int:
    # Lazy: the cache module belongs to the training side of the package.
    from rethinkbench.suite.cacheinfo import cache_info, format_cache_info

    if args.cache_dir.exists() and not args.cache_dir.is_dir():
        print(f"rethinkbench cache info: error: {args.cache_dir} is not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    info = cache_info(args.cache_dir)
    print(json.dumps(info, indent=1) if args.json else format_cache_info(info))
    return EXIT_OK


def _timing_factor(text: str) -> float:
    """argparse type: a finite number >= 1 (how many times slower training may get)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: the factor must be a finite number >= 1.0")
    return value


def _version() -> str:
    try:
        return version("rethinkbench")
    except PackageNotFoundError:  # a source checkout that was never pip-installed
        return str(getattr(rethinkbench, "__version__", "unknown (not installed)"))


if __name__ == "__main__":
    sys.exit(main())

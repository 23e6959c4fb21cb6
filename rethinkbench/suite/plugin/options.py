"""The plugin's command-line options, each with a type parser that rejects bad values and a help
text that gives its default (pytest-benchmark's style). Only parsing happens here: what a value
means for the session is checked at configure time (state.py)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from rethinkbench.engine.cache import DEFAULT_DIR
from rethinkbench.harness.data import DATASETS, default_data_root
from rethinkbench.suite.scales import SCALES


def _choice(name, allowed):
    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value
    return parse


def _name(option):
    """A non-empty name; whether it is built in or a plugin is decided at configure time, where an
    unknown one gets the registry's message (the built-ins, the installed plugins, how to add one)."""
    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{option} needs a name, got {value!r}")
        return value
    return parse


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr must be a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise argparse.ArgumentTypeError(f"--lr must be a positive number, got {value!r}")
    return x


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer (at least 1), got {n}")
    return n


def pytest_addoption(parser):
    g = parser.getgroup("rethinkbench", "rethinkbench: re-check generalization claims")
    g.addoption("--gpu", action="store_true", default=False,
                help="paper scale on CUDA: CIFAR-10, the paper's models (default: off; a usage "
                     "error when CUDA is not available)")
    g.addoption("--scale", type=_choice("--scale", tuple(SCALES)), default=None, metavar="NAME",
                help="smoke | cpu | paper (default: cpu, or paper with --gpu)")
    g.addoption("--dataset", type=_name("--dataset"), default=None, metavar="NAME",
                help=f"run the claims on this dataset: a built-in one ({' | '.join(DATASETS)}), an "
                     f"installed plugin's name (entry point group rethinkbench.datasets) or an "
                     f"import path module:loader (default: the scale's: mnist5k at cpu/smoke, "
                     f"cifar10 at paper)")
    g.addoption("--model", type=_name("--model"), default=None, metavar="NAME",
                help="run the model-generic claims on this model only: a built-in one, an installed "
                     "plugin's name (entry point group rethinkbench.harness.models) or an import path "
                     "module:factory; claims about the paper's own networks are skipped for a "
                     "plugin (default: each claim's paper models)")
    g.addoption("--lr", type=_positive_float, default=None, metavar="X",
                help="SGD learning rate of every run (default: the model's: the paper's for its "
                     "networks, the factory's default_lr for a plugin)")
    g.addoption("--seeds", type=_positive_int, default=None, metavar="N",
                help="seeds per claim (default: the scale's: smoke 1, cpu 3, paper 1)")
    g.addoption("--data-root", type=Path, default=None, metavar="PATH",
                help=f"where torchvision datasets live or are downloaded (default: "
                     f"$RETHINKBENCH_DATA or {default_data_root()})")
    g.addoption("--imagenet-root", type=Path, default=None, metavar="PATH",
                help="ImageNet in torchvision's layout, for the Table 2 claims (paper scale only; "
                     "default: none, those claims skip)")
    g.addoption("--long", action="store_true", default=False,
                help="also run the long claims at cpu scale: claims marked `long` (the model-wise "
                     "double descent width sweep, DD-model-wise: about 70 minutes on one core of a "
                     "2-core Intel Xeon) are skipped at cpu scale without it; they always run "
                     "at smoke and paper scale (default: off)")
    g.addoption("--cache-dir", type=Path, default=Path(DEFAULT_DIR), metavar="PATH",
                help=f"results cache directory (default: {DEFAULT_DIR} in the rootdir)")
    g.addoption("--no-cache", action="store_true", default=False,
                help="train every run, ignore and do not write the results cache (default: off)")
    g.addoption("--clear-cache", action="store_true", default=False,
                help="empty the results cache before the session (default: off)")
    g.addoption("--plan", action="store_true", default=False,
                help="train nothing: list the runs the selected claims need, which are cached, and "
                     "an estimate of the training time from per-step costs measured on this device "
                     "(default: off; also `rethinkbench plan [pytest args]`)")
    g.addoption("--plan-json", type=Path, default=None, metavar="PATH",
                help="with --plan: also write the plan (every run's key, config, cached or not, "
                     "expected epochs and seconds, the tests that ask for it) as JSON to PATH "
                     "(default: none)")
    g.addoption("--timing-table", action="store_true", default=False,
                help="print pytest-benchmark's table of the claims' training timings (default: off; "
                     "each run's seconds are in results.json and the report either way)")
    g.addoption("--report-dir", type=Path, default=Path("reports"), metavar="PATH",
                help="where results.json and index.html are written (default: reports/ in the rootdir)")

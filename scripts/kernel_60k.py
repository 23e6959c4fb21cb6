"""Measure the §5 kernel solve at full size on this machine: n = 60,000 without a GPU.

    python scripts/kernel_60k.py /work/kernel60k.json                    # all 60,000, tiled, CPU
    python scripts/kernel_60k.py --n 20000 kernel20k.json                # a smaller run
    python scripts/kernel_60k.py --dataset mnist --data-root ~/data out.json

Solves K alpha = Y (Gaussian kernel exp(-gamma ||x - x'||^2) on pixels / 255, one-hot targets, no
regularization) on the first n training images of the dataset (default fashion_mnist, which needs
no network where Debian's dataset-fashion-mnist is installed) and classifies the whole test set, with
the solver of `rethinkbench.theory.kernels` (default: the tiled one, which holds only K's lower triangle:
~14.9 GB at n = 60,000 against 28.8 GB dense). Writes one JSON with the sizes, the solver, wall
seconds per phase (gram: building K; factor: the Cholesky; solve: substitutions, RKHS norm and
condition estimate; predict: f on the train and test sets, kernel rows recomputed), the process's
peak RSS, the errors, the load average before and after (other users of a shared machine slow
it down), the CPU model and thread count. Progress goes to stderr, one line per tile column. The
JSON is written only when the run finishes (via a temporary file and a rename).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from rethinkbench.theory import kernels

from rethinkbench.theory import tiled
from rethinkbench.base.provenance import device_name, git_commit


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="where to write the JSON")
    p.add_argument("--dataset", default="fashion_mnist",
                   help="a rethinkbench dataset name (default: fashion_mnist)")
    p.add_argument("--n", type=_positive_int, default=None,
                   help="training points: the first N of the training split (default: all)")
    p.add_argument("--n-test", type=_positive_int, default=None,
                   help="test points: the first N of the test split (default: all)")
    p.add_argument("--solver", choices=kernels.SOLVERS, default="tiled",
                   help="dense, tiled or auto (dense when it fits; default: tiled)")
    p.add_argument("--tile", type=_positive_int, default=tiled.DEFAULT_TILE,
                   help=f"rows per tile of the tiled solver (default: {tiled.DEFAULT_TILE})")
    p.add_argument("--gamma", type=_positive_float, default=kernels.MNIST_GAMMA,
                   help=f"kernel bandwidth on pixels / 255 (default: the paper's {kernels.MNIST_GAMMA})")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--data-root", default=None, help="torchvision datasets (default: the harness's)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def cpu_model() -> str:
    return device_name("cpu")


def mem_available_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return None


def run(args: argparse.Namespace) -> dict:
    load_before, mem_before, t_start = os.getloadavg(), mem_available_gb(), time.perf_counter()
    commit, dirty = git_commit()   # now: the code that runs, not what is checked out at the end
    px = kernels.load_pixels(args.dataset, seed=0, data_root=args.data_root)
    n = len(px.y_train) if args.n is None else args.n
    if n > len(px.y_train):
        raise SystemExit(f"--n {n}: {args.dataset} has only {len(px.y_train)} training images")
    n_test = len(px.y_test) if args.n_test is None else min(args.n_test, len(px.y_test))
    seconds_load = time.perf_counter() - t_start
    res = kernels.kernel_classification(px.x_train[:n], px.y_train[:n], px.x_test[:n_test],
                                        px.y_test[:n_test], num_classes=px.num_classes,
                                        gamma=args.gamma, device=args.device, solver=args.solver,
                                        tile=args.tile)
    seconds = {"load": seconds_load, "gram": res.seconds["kernel"], "factor": res.seconds["factor"],
               "solve": res.seconds["solve"], "predict": res.seconds["predict"]}
    seconds["total"] = time.perf_counter() - t_start
    return {
        "dataset": px.name, "n": n, "n_test": n_test, "d": int(px.x_train[0].numel()),
        "gamma": args.gamma, "solver": res.solver, "tile": res.tile, "device": res.device,
        "method": res.method, "seconds": seconds,
        "factor_gflops_per_s": n**3 / 3 / res.seconds["factor"] / 1e9,
        "storage_gb": res.kernel_gb, "dense_gb": n * n * 8 / 1e9,
        "peak_rss_gb": res.peak_rss_gb, "peak_gpu_gb": res.peak_gb,
        "test_error": res.test_error, "train_error": res.train_error,
        "max_train_residual": res.max_train_residual, "rkhs_norm": res.rkhs_norm,
        "rkhs_norm_check": res.rkhs_norm_check, "cond1": res.cond1,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "mem_available_gb_before": mem_before,
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device_name": device_name(args.device), "torch": str(torch.__version__),
        "git_commit": commit, "git_dirty": dirty,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.quiet:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                            format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        logging.getLogger("rethinkbench.theory.tiled").info(
            "%s: n=%s, solver %s, tile %d, load average %s, MemAvailable %.1f GB",
            args.dataset, args.n or "all", args.solver, args.tile,
            " ".join(f"{x:.2f}" for x in os.getloadavg()), mem_available_gb() or float("nan"))
    result = run(args)
    write_json(result, args.out)
    if not args.quiet:
        s = result["seconds"]
        print(f"n={result['n']} {result['solver']} (tile {result['tile']}): gram {s['gram']:.0f} s, "
              f"factor {s['factor']:.0f} s, solve {s['solve']:.0f} s, predict {s['predict']:.0f} s; "
              f"peak RSS {result['peak_rss_gb']:.2f} GB; test error {result['test_error']:.4f} "
              f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

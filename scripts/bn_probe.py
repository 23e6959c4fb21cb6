"""Why does small Inception without BatchNorm not train at cpu scale? (issue 11, Z-S31-bn)

Trains inception_small_nobn over the suspects one at a time — width, lr, initialization, data size —
on mnist5k, seed 0, with no stall stop (a collapsed run is trained to the end of its budget), and
prints/writes one JSON line per run: did it leave chance, how far did it get, how long it took.

    python scripts/bn_probe.py OUT.jsonl [--epochs 40] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import rethinkbench as rb

# (name, overrides), most informative first, each changing one or two things from the cpu scale's
# setting (width 1/8, 500 digits, lr 0.1 = the paper's Inception lr, PyTorch's default init).
PROBES = [
    ("cpu-setting", dict()),
    ("glorot", dict(init="glorot_uniform")),
    ("width1/4-glorot", dict(width=0.25, init="glorot_uniform")),
    ("n2000-glorot", dict(n_train=2000, init="glorot_uniform")),
    ("width1/4", dict(width=0.25)),
    ("glorot-lr0.01", dict(init="glorot_uniform", lr=0.01)),
    ("lr0.01", dict(lr=0.01)),
    ("width1/4-glorot-lr0.01", dict(width=0.25, init="glorot_uniform", lr=0.01)),
    ("width1/2-glorot", dict(width=0.5, init="glorot_uniform")),
    ("he", dict(init="kaiming_normal")),
    ("he-lr0.01", dict(init="kaiming_normal", lr=0.01)),
]


def probe(name: str, overrides: dict, epochs: int, model: str) -> dict:
    base = dict(model=model, width=0.125, n_train=500, max_epochs=epochs, stall_epochs=None, seed=0)
    cfg = rb.RunConfig(**{**base, **overrides})
    t0 = time.perf_counter()
    res = rb.train(cfg)
    chance = math.log(10)
    left = next((h["epoch"] for h in res.history if h["train_loss"] < chance - 0.05), None)
    return {"probe": name, "model": model, "width": cfg.width, "n_train": cfg.n_train, "lr": cfg.effective_lr,
            "init": cfg.init, "epochs": len(res.history), "left_chance_epoch": left,
            "final_loss": res.history[-1]["train_loss"], "final_train_acc": res.final_train_acc,
            "best_test_acc": res.best_test_acc, "epochs_to_fit": res.epochs_to_fit,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--only", nargs="*", default=None, help="probe names to run (default: all)")
    ap.add_argument("--model", default="inception_small_nobn")
    args = ap.parse_args(argv)
    known = dict(PROBES)
    for name in args.only or []:
        if name not in known:
            ap.error(f"unknown probe {name!r}; known: {', '.join(known)}")
    with open(args.out, "a") as f:
        for name, overrides in PROBES:
            if args.only and name not in args.only:
                continue
            row = probe(name, overrides, args.epochs, args.model)
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")
            f.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

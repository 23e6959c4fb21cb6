"""A plan before training: which runs a selection of claims needs, which are cached, how long the
rest will take on this device.

`pytest claims/ --plan` (or `rethinkbench plan [pytest args]`) executes each selected claim test
with a `run` fixture that records the configs it asks for and hands back placeholder results instead
of training (tests that train nothing are not executed at all). A placeholder has a real result's
shape (a history, a per-example record, a network to probe: `placeholder_result`), so a claim that
computes on one result before asking for the next goes on asking; tests/test_plan_keys.py checks
that the plan lists exactly the runs a real session trains (smoke: 83; cpu: the 264 of the
committed baseline). A test that branches on what it measured may ask for other runs once real
results exist (none in claims/ did at smoke or cpu scale).

Runs stack into cohorts only within one `run.many` call, as the runner trains them (and only where
`train_many` would: MLPs on CUDA); the estimate forms its cohorts the same way.

The estimate comes from costs measured here, now, on this device: for each distinct network shape
(model, width, input shape, batch size, dropout) a few training steps and an evaluation pass are
timed with the same code `train()` runs (on CUDA the graphed step, after its warm-up). A run's
time is then steps x step cost + evaluations x eval cost, with

- epochs: the cached run's own; else those of a cached run that differs only in seed (the best
  guess of when it fits); else the mean of the runs of that config (any seed, any device) in the
  committed baselines (reports/baselines/*.json); else the budget (max_epochs; an upper bound when
  the run stops at fit: marked "≤" in the table);
- evaluations per epoch: the test set, plus the training set once training accuracy nears 100%
  (counted for every epoch: an upper bound).
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.cohort import plan_cohorts, stacks_by_default
from rethinkbench.engine.stacked import StackedModel
from rethinkbench.engine.config import RunConfig
from rethinkbench.engine.graphs import GraphedStep, make_graph_optimizer
from rethinkbench.engine.loop import EVAL_BATCH, cudnn_benchmark, make_optimizer, predict
from rethinkbench.engine.result import RunResult
from rethinkbench.harness.data import Dataset
from rethinkbench.harness.regularizers import ADV_STEPS
from rethinkbench.registry import build_model

# Training-set sizes of the built-in datasets (train, test, shape, classes): planning must not
# need the data (a plan for CIFAR-10 on a machine that has not downloaded it yet is still useful).
KNOWN_DATA = {"mnist5k": (4000, 1000, (1, 28, 28), 10), "mnist": (60000, 10000, (1, 28, 28), 10),
              "fashion_mnist": (60000, 10000, (1, 28, 28), 10), "cifar10": (50000, 10000, (3, 28, 28), 10)}
TIMED_STEPS = 20


@dataclass
class PlannedRun:
    config: RunConfig
    cached: bool
    epochs: int               # expected epochs (a cached sibling's), else the budget
    epochs_known: bool        # True when taken from a cached sibling run
    seconds: float = 0.0
    tests: list = field(default_factory=list)


def placeholder_result(cfg: RunConfig, n_train: int = 1, num_classes: int = 10, keep_model: bool = False):
    """What `run()` returns in plan mode: a run that used its whole budget without fitting, with
    no numbers (NaN accuracies and losses). It has the shape of a real result, so that a claim
    goes on to ask for all its runs: one history record at the budget's last step, a
    per-example record of `n_train` zeros when the config asks for one, and with `keep_model` a
    stand-in network (`PlaceholderNet`) that answers every input with zeros."""
    nan = float("nan")
    steps = cfg.max_steps or cfg.max_epochs * max(1, math.ceil(n_train / cfg.batch_size))
    epochs = max(1, math.ceil(steps / max(1, math.ceil(n_train / cfg.batch_size))))
    record = {"epoch": epochs, "step": steps, "train_loss": nan, "train_acc": nan, "lr": nan,
              "test_acc": nan, "seconds": 0.0}
    res = RunResult(config=cfg, history=[record], epochs_to_fit=None, steps_to_fit=None,
                    final_train_acc=nan, final_test_acc=nan, best_test_acc=nan, wall_seconds=0.0,
                    provenance={"plan": True},
                    per_example_correct=[0] * n_train if cfg.record_per_example else None)
    if keep_model:
        res.model = PlaceholderNet(num_classes)
    return res


class PlaceholderNet(torch.nn.Module):
    """The `model` of a plan's placeholder result: zeros for every class, differentiable in its
    input (a claim that probes a trained network runs through it at no cost)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).sum(1, keepdim=True) * 0.0).expand(-1, self.num_classes)


def placeholder_dataset(name: str) -> Dataset:
    """A one-image stand-in with the dataset's shape and classes, for claims that read them. Its
    `info["plan_stand_in"]` (kept by corruptions) holds the real sizes, (n_train, n_test): a
    claim's in-memory data derived from it is planned at those, not at one image."""
    n_train, n_test, shape, classes = KNOWN_DATA.get(name, (1, 1, (1, 28, 28), 10))
    x = torch.zeros(1, *shape)
    y = torch.zeros(1, dtype=torch.int64)
    return Dataset(x, y, x.clone(), y.clone(), num_classes=classes, name=name,
                   info={"plan_stand_in": (n_train, n_test)})


class Plan:
    """The runs requested by the executed tests, in order of first request."""

    def __init__(self, cache, data_sizes: dict | None = None, priors: dict | None = None):
        self.cache = cache
        self.priors = dict(priors or {})   # prior_key(config) -> epochs of stored runs
        self.runs: dict[str, PlannedRun] = {}
        self.data_sizes = dict(data_sizes or {})   # dataset name -> (n_train, n_test)
        self.in_shapes: dict[str, tuple] = {}      # dataset name -> (C, H, W), when not built in
        self.num_classes: dict[str, int] = {name: k for name, (_, _, _, k) in KNOWN_DATA.items()}
        # Each `run.many` call's configs and whether the runner would stack them (train_many's
        # cohorts): runs stack only within one request, so the estimate forms cohorts per request.
        self.requests: list[tuple[list[RunConfig], bool]] = []
        self.executed: list[str] = []
        self.not_executed: list[str] = []
        self.notes: list[str] = []
        self.keep_model: set[str] = set()   # keys whose claim keeps the trained network (executors ship it)

    def know_dataset(self, ds: Dataset, name: str | None = None) -> None:
        """Plan runs on `ds` (a plugin's loaded data, a claim's in-memory data) at its sizes. A
        dataset derived from a plan's stand-in (`placeholder_dataset`) is planned at the sizes the
        stand-in holds for the real one."""
        n_train, n_test = ds.info.get("plan_stand_in") or (ds.n_train, len(ds.y_test))
        name = name or ds.name
        self.data_sizes[name] = (n_train, n_test)
        self.in_shapes[name] = tuple(ds.in_shape)
        self.num_classes[name] = ds.num_classes

    def request(self, cfgs: list[RunConfig], nodeid: str, data: dict | None = None,
                stacks: bool = False, keep_model: bool = False) -> list:
        """Record one `run.many` call: its configs, the in-memory data of its custom runs (config
        key -> Dataset) and whether the runner would train it through train_many's cohorts; the
        placeholder results (`placeholder_result`) that stand in for its runs."""
        for cfg in cfgs:
            if data and cfg.key() in data:
                self.know_dataset(data[cfg.key()], cfg.dataset)
        self.requests.append((list(cfgs), stacks))
        for cfg in cfgs:
            key = cfg.key()
            if key not in self.runs:
                hit = self.cache.get(cfg) if self.cache is not None else None
                epochs, known = self._expected_epochs(cfg, hit)
                self.runs[key] = PlannedRun(cfg, hit is not None, epochs, known)
            if nodeid not in self.runs[key].tests:
                self.runs[key].tests.append(nodeid)
        return [placeholder_result(c, self._size_or_one(c), self.num_classes.get(c.dataset, 10), keep_model)
                for c in cfgs]

    def _size_or_one(self, cfg: RunConfig) -> int:
        try:
            return self.n_train(cfg)[0]
        except UsageError:   # found again, and reported, by the estimate
            return 1

    def _expected_epochs(self, cfg: RunConfig, hit) -> tuple[int, bool]:
        if hit is not None:
            return len(hit.history), True
        if self.cache is not None:
            for seed in range(8):   # a sibling that differs only in seed says when this one fits
                if seed != cfg.seed:
                    sib = self.cache.get(cfg.replace(seed=seed))
                    if sib is not None:
                        return len(sib.history), True
        seen = self.priors.get(prior_key(cfg))
        if seen:   # a committed baseline trained this config (another seed, maybe another device)
            return round(sum(seen) / len(seen)), True
        return cfg.max_epochs, not cfg.stop_at_fit

    def n_train(self, cfg: RunConfig) -> tuple[int, int]:
        """(training examples, test examples) of run cfg; a dataset of unknown size (never seen by
        this plan, not built in) is a UsageError naming it, not a division by zero later."""
        sizes = self.data_sizes.get(cfg.dataset) or KNOWN_DATA.get(cfg.dataset, (None, None))[:2]
        if sizes[0] is None:
            raise UsageError(f"the plan does not know the size of dataset {cfg.dataset!r} (run "
                             f"{cfg.label()!r}): not built in and never loaded in this session")
        return (cfg.n_train or sizes[0]), min(cfg.n_test or sizes[1], sizes[1])

    # ------------------------------------------------------------------ estimates
    def estimate(self, costs: "CostTable") -> None:
        """Fill in each run's seconds. A run is trained by the first request that asks for it
        (later ones find it in the cache); within a request the runner's `train_many` stacks
        runs into cohorts (same network, same budget; see engine/cohort.py) where it would, and
        a stacked cohort's runs share one stacked step, timed for the cohort's size."""
        planned: set[str] = set()
        for cfgs, stacks in self.requests:
            todo = []
            for cfg in dict.fromkeys(cfgs):   # as the runner: a config asked for twice trains once
                key = cfg.key()
                if key not in planned and not self.runs[key].cached:
                    planned.add(key)
                    todo.append(cfg)
            if not todo:
                continue
            for cohort in plan_cohorts(todo) if stacks and len(todo) > 1 else [[c] for c in todo]:
                cfg = cohort[0]
                # train_many's rule: stack a cohort of two or more where stacking pays by default.
                k = len(cohort) if len(cohort) > 1 and stacks_by_default(cfg) else 1
                n, n_test = self.n_train(cfg)
                steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
                step_s, eval_s = costs.get(cfg, n, k)
                for member in cohort:
                    run = self.runs[member.key()]
                    steps = min(cfg.max_steps or 10**12, run.epochs * steps_per_epoch)
                    epochs = math.ceil(steps / steps_per_epoch)
                    # A stacked step trains k runs: each run carries 1/k of it.
                    run.seconds = steps * step_s / k + epochs * (n_test + n) * eval_s

    def totals(self) -> dict:
        todo = [r for r in self.runs.values() if not r.cached]
        return {"runs": len(self.runs), "cached": len(self.runs) - len(todo), "to_train": len(todo),
                "seconds": sum(r.seconds for r in todo),
                "upper_bound": any(not r.epochs_known for r in todo)}

    def to_dict(self, device: str) -> dict:
        """The plan as data (`--plan-json`): totals, then every run in order of first request."""
        return {"device": device, **self.totals(), "notes": list(self.notes),
                "runs": [{"key": key, "label": r.config.label(), "config": r.config.to_dict(),
                          "cached": r.cached, "epochs": r.epochs, "epochs_known": r.epochs_known,
                          "seconds": r.seconds, "tests": list(r.tests)} for key, r in self.runs.items()]}

    def lines(self, device: str) -> list[str]:
        """The plan as table rows: one per group of runs sharing a network shape."""
        groups: dict[tuple, list[PlannedRun]] = {}
        for run in self.runs.values():
            c = run.config
            groups.setdefault((c.model, c.width, c.dataset, c.n_train, c.batch_size), []).append(run)
        rows = [("model", "width", "data", "n_train", "runs", "cached", "epochs", "est. time")]
        for (model, width, data, n_train, _), runs in groups.items():
            todo = [r for r in runs if not r.cached]
            epochs = sorted({r.epochs for r in todo})
            bound = "≤" if any(not r.epochs_known for r in todo) else ""
            rows.append((model, f"{width:g}", data, str(n_train or self.n_train(runs[0].config)[0]),
                         str(len(runs)), str(len(runs) - len(todo)),
                         "-" if not epochs else f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}",
                         "-" if not todo else bound + format_seconds(sum(r.seconds for r in todo))))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        t = self.totals()
        out = [fmt(rows[0]), fmt(tuple("-" * w for w in widths)), *map(fmt, rows[1:]), "", *self.notes]
        out.append(f"plan on {device}: {t['runs']} runs, {t['cached']} cached, {t['to_train']} to "
                   f"train, estimated {'≤ ' if t['upper_bound'] else ''}{format_seconds(t['seconds'])}"
                   f" (tests executed for their runs: {len(self.executed)}; tests that train "
                   f"nothing: {len(self.not_executed)}); nothing was trained and no claim was checked")
        if t["upper_bound"]:
            out.append("≤: no cached run of the same config says when it fits; the budget "
                       "(max_epochs) is assumed, so the estimate is an upper bound")
        return out


def prior_key(cfg: RunConfig | dict) -> str:
    """A config without its seed and device: runs that should take about as many epochs."""
    d = dict(cfg.to_dict() if isinstance(cfg, RunConfig) else cfg)
    d.pop("seed", None)
    d.pop("device", None)
    return json.dumps(d, sort_keys=True)


def load_priors(paths) -> dict[str, list[int]]:
    """Epochs trained by each run stored in results files (the committed baselines), by prior_key.
    An unreadable file is skipped: priors only sharpen an estimate."""
    priors: dict[str, list[int]] = {}
    for path in paths:
        try:
            runs = json.loads(Path(path).read_text()).get("runs", {})
            for run in runs.values():
                priors.setdefault(prior_key(run["config"]), []).append(len(run["history"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return priors


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"   # a paper-scale plan priced on a CPU


class CostTable:
    """Seconds per training step and per evaluated example, measured once per network shape."""

    def __init__(self, device: str, in_shapes: dict | None = None):
        self.device = device
        self.in_shapes = dict(in_shapes or {})
        self.measured: dict[tuple, tuple[float, float]] = {}

    def get(self, cfg: RunConfig, n_train: int, k: int = 1) -> tuple[float, float]:
        """(seconds per step of k stacked runs, seconds per evaluated example)."""
        shape = self.in_shapes.get(cfg.dataset, KNOWN_DATA.get(cfg.dataset, (0, 0, (1, 28, 28)))[2])
        if n_train < 1:
            raise UsageError(f"run {cfg.label()!r} has {n_train} training examples: nothing to time")
        key = (cfg.model, cfg.width, shape, min(cfg.batch_size, n_train), cfg.dropout, k)
        if key not in self.measured:
            self.measured[key] = measure_costs(cfg, shape, key[3], self.device, k)
        step_s, eval_s = self.measured[key]
        if cfg.adversarial:
            # The adversarial step adds ADV_STEPS input-gradient passes and one more forward and
            # backward to the plain step: counted as that many plain steps (not timed itself).
            step_s *= ADV_STEPS + 2
        return step_s, eval_s


def measure_costs(cfg: RunConfig, in_shape, batch: int, device: str, k: int = 1) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluated example) of cfg's network on `device`,
    timed with the step `train()` uses there (`k` > 1: the stacked step of a k-run cohort), with
    cuDNN's autotuner on CUDA as `train()` and `train_cohort()` have it."""
    cuda = torch.device(device).type == "cuda"
    with cudnn_benchmark(cuda):
        return _measure_costs(cfg, in_shape, batch, device, k)


def _measure_costs(cfg: RunConfig, in_shape, batch: int, device: str, k: int) -> tuple[float, float]:
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *in_shape, generator=gen).to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    with torch.random.fork_rng(devices=[dev] if cuda else []):
        torch.manual_seed(0)
        model = build_model(cfg.model, in_shape, 10, cfg.width, cfg.dropout).to(dev)
    if cuda and not cfg.model.startswith("mlp"):
        model = model.to(memory_format=torch.channels_last)
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
    if k > 1:
        with torch.random.fork_rng(devices=[dev] if cuda else []):
            nets = [build_model(cfg.model, in_shape, 10, cfg.width, cfg.dropout).to(dev) for _ in range(k)]
        amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
        stacked = StackedModel(nets, cfg.momentum, cfg.weight_decay, amp)
        xs, ys = x.expand(k, *x.shape).contiguous(), y.expand(k, *y.shape).contiguous()
        one = lambda: stacked(xs, ys, cfg.effective_lr)
    elif cuda:
        opt, lr = make_graph_optimizer(model, cfg, dev)
        step = GraphedStep(model, opt, lr, autocast_dtype=torch.bfloat16)
        one = lambda: step(x, y, cfg.effective_lr)
    else:
        opt = make_optimizer(model, cfg)

        def one():
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for _ in range(5):      # warm-up (and, on CUDA, the graph's capture)
        one()
    sync()
    windows = []            # the median of short windows: a busy neighbour spoils few of them
    for _ in range(TIMED_STEPS // 4):
        t0 = time.perf_counter()
        for _ in range(4):
            one()
        sync()
        windows.append((time.perf_counter() - t0) / 4)
    step_s = sorted(windows)[len(windows) // 2]
    chunk = min(EVAL_BATCH.get(dev.type, 1024), 4 * batch)
    xe = x.repeat((chunk + batch - 1) // batch, 1, 1, 1)[:chunk]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    predict(model, xe, autocast)
    sync()
    t0 = time.perf_counter()
    for _ in range(3):
        predict(model, xe, autocast)
    sync()
    eval_s = (time.perf_counter() - t0) / (3 * chunk)
    return step_s, eval_s

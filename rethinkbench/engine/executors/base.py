"""The executor interface: train these cohorts somewhere, hand each result back as plain data the
moment it arrives.

What crosses the wire is plain data both ways, so a driver without CUDA (or without the worker's
torch build) can read it: a `CohortTask` holds RunConfig dicts, and a worker answers with
`RunResult.to_dict()` per run (config, history, measured numbers, provenance), plus the trained
weights as CPU tensors only for a run whose claim keeps its model. CUDA tensors never travel: they
do not unpickle on a CPU-only driver.

A worker trains with the very functions a local session uses (`train`, and `train_many` on CUDA,
the Runner's rule in suite/runner.py), with the same settings: same config -> same history on the
same kind of machine. It sets no thread count of its own. Provenance gains an `executor` entry
saying where the run trained (backend, node, host, attempt); the cache key does not change.

A run that raises on the worker (NaN loss, data it cannot load) is answered as an error for that
run, named with the node and the data root; the other runs of the cohort still come back. A node
that dies is the backend's to retry (`max_retries`); a cohort that still fails is an error for each
of its runs. The driver (driver.py) turns errors into an error verdict for the claims that need
those runs, never "not reproduced".
"""
from __future__ import annotations

import abc
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["CohortTask", "CohortOutcome", "Executor", "ExecutorError", "train_cohort_task",
           "check_resources", "result_from_wire"]


class ExecutorError(Exception):
    """The cluster cannot run the plan (missing resources, unreachable, misconfigured)."""


@dataclass
class CohortTask:
    """One unit of work sent to a worker: the runs of one cohort (engine/cohort.py's plan_cohorts)."""
    index: int
    configs: list[dict]                     # RunConfig.to_dict() of each member
    keep_model: list[str] = field(default_factory=list)   # keys whose trained weights come back
    data_root: str | None = None
    gpus: float = 0.0                       # what the task asks the scheduler for
    cpus: float = 1.0

    @property
    def keys(self) -> list[str]:
        from rethinkbench.engine.config import RunConfig   # torch: not needed to build a task list
        return [RunConfig.from_dict(c).key() for c in self.configs]

    def to_dict(self) -> dict:
        return {"index": self.index, "configs": self.configs, "keep_model": list(self.keep_model),
                "data_root": self.data_root}


@dataclass
class CohortOutcome:
    """What came back for one task: per run either a result dict or an error message."""
    index: int
    results: list[dict]                     # {"key", "result": RunResult dict | None, "error": str | None, "weights"?}
    node: dict                              # where it ran: {"backend", "node", "hostname", "pid"}
    seconds: float                          # the worker's wall time for the whole cohort
    attempt: int = 1


class Executor(abc.ABC):
    """A backend that trains cohorts. `submit` yields each CohortOutcome as it arrives."""
    name = "base"

    def resources(self) -> dict:
        """{"CPU": n, "GPU": n, "nodes": n}: what the backend can schedule (None: unknown)."""
        return {"CPU": None, "GPU": None, "nodes": None}

    def describe(self) -> str:
        """Where the tasks go, in words (the first progress line)."""
        return self.name

    def slots(self, task: CohortTask) -> int:
        """How many tasks like `task` can run at once (for the progress line's ETA)."""
        return 1

    @abc.abstractmethod
    def submit(self, tasks: list[CohortTask]) -> Iterator[CohortOutcome]:
        """Send every task; yield outcomes in order of arrival. A task that failed for good (its
        retries spent) yields an outcome whose runs all carry the error."""

    def running(self) -> int:
        """Tasks sent and not yet answered."""
        return 0

    def cancel(self) -> None:
        """Stop outstanding tasks (Ctrl-C); finished ones are already with the driver."""

    def close(self) -> None:
        """Release what the executor started (a local Ray instance, a job folder)."""


def check_resources(tasks: list[CohortTask], available: dict, where: str) -> None:
    """Refuse, before anything is sent, a plan no node can schedule: a task asking for more GPUs or
    CPUs than the cluster has would wait forever (Ray queues it silently)."""
    if not tasks:
        return
    for kind, need in (("GPU", max(t.gpus for t in tasks)), ("CPU", max(t.cpus for t in tasks))):
        have = available.get(kind)
        if need > 0 and have is not None and have < need:
            hint = ("run on a cluster with GPUs, or without --gpu" if kind == "GPU"
                    else "lower cpus_per_cohort in --executor-config")
            raise ExecutorError(
                f"the plan's cohorts each need {need:g} {kind}, but {where} has {have:g} {kind} in "
                f"all ({_describe(available)}); nothing was sent: {hint}")


def _describe(available: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} ?" for k, v in available.items())


def train_cohort_task(task: dict, backend: str = "local", node: str | None = None) -> dict:
    """The worker's side: train the task's runs exactly as a local session would, answer plain data.

    On CUDA a cohort of several runs goes through `train_many` (stacked where it pays), as the
    Runner does; otherwise each run is `train(cfg)` alone. A run that raises is an error for that
    run only."""
    # torch and the engine load in the worker process, not when a driver merely builds tasks.
    from rethinkbench.engine.cohort import train_many
    from rethinkbench.engine.config import RunConfig
    from rethinkbench.engine.train import train

    t0 = time.perf_counter()
    where = {"backend": backend, "node": node or platform.node(), "hostname": platform.node(),
             "pid": os.getpid()}
    cfgs = [RunConfig.from_dict(c) for c in task["configs"]]
    keep = set(task.get("keep_model") or ())
    root = task.get("data_root")
    answers: list[dict] = []
    stack = (len(cfgs) > 1 and not keep and cfgs[0].device.startswith("cuda")
             and not any(c.dataset.startswith("custom:") for c in cfgs))
    if stack:
        try:
            results = train_many(cfgs, data_root=root)
            answers = [_answer(c, r, False, where) for c, r in zip(cfgs, results)]
        except Exception as exc:   # noqa: BLE001 - one answer per run, the error named with the node
            answers = [_error(c, exc, where, root) for c in cfgs]
    else:
        for c in cfgs:
            try:
                r = train(c, data_root=root, keep_model=c.key() in keep)
                answers.append(_answer(c, r, c.key() in keep, where))
            except Exception as exc:   # noqa: BLE001
                answers.append(_error(c, exc, where, root))
    return {"index": task["index"], "results": answers, "node": where,
            "seconds": time.perf_counter() - t0}


def _answer(cfg, result, keep: bool, where: dict) -> dict:
    result.provenance["executor"] = dict(where)
    out = {"key": cfg.key(), "result": result.to_dict(), "error": None}
    if keep and result.model is not None:
        model = result.model
        out["weights"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        out["model_shape"] = [list(model.in_shape), _num_classes(model)]
    return out


def _error(cfg, exc: BaseException, where: dict, root) -> dict:
    return {"key": cfg.key(), "result": None,
            "error": f"{type(exc).__name__}: {exc} (run {cfg.label()} on node {where['node']} "
                     f"[{where['hostname']}], data root {root or 'default'})"}


def _num_classes(model) -> int:
    from rethinkbench.engine.cache import _num_classes as n   # the cache's own rule for a model's classes
    return n(model)


def result_from_wire(answer: dict):
    """A RunResult from a worker's answer (with its network rebuilt on CPU when weights came)."""
    from rethinkbench.engine.result import RunResult   # torch: only once results arrive
    result = RunResult.from_dict(answer["result"])
    if answer.get("weights") is not None:
        from rethinkbench.registry import build_model   # only when a kept network came back
        cfg = result.config
        in_shape, classes = answer["model_shape"]
        model = build_model(cfg.model, tuple(in_shape), classes, cfg.width, cfg.dropout)
        model.load_state_dict(answer["weights"])
        result.model = model.to(cfg.device).eval()
    return result

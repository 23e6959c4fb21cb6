"""The driver's loop: plan -> cohorts -> tasks, send them, write each result into the cache the
moment it arrives, show progress, and say which runs failed.

`dispatch(executor, cfgs, cache, ...)` is what `pytest --executor ...` calls before its test loop
(suite/plugin/executor.py) and what a script may call itself. It returns a `Dispatch`: the results
by key (also in the cache, unless the cache is off), the error of each run that failed for good,
and a log per cohort (node, attempt, seconds) that the session writes to reports/executor.json.

Ctrl-C (KeyboardInterrupt) cancels what is outstanding and re-raises; every result that arrived
before it is already in the cache, so a rerun trains only the rest.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rethinkbench.base.errors import RethinkbenchError
from rethinkbench.engine.cache import ResultsCache
from rethinkbench.engine.cohort import plan_cohorts
from rethinkbench.engine.config import RunConfig
from rethinkbench.engine.executors.base import CohortTask, Executor, result_from_wire



class RemoteRunError(RethinkbenchError):
    """A run the executor was to train did not come back: an error of the tool for the claims that
    need it (results.json's "error"), never "not reproduced"."""


@dataclass
class Dispatch:
    results: dict = field(default_factory=dict)    # key -> RunResult
    errors: dict = field(default_factory=dict)     # key -> message
    cohorts: list = field(default_factory=list)    # one log entry per answered cohort
    seconds: float = 0.0
    planned: set = field(default_factory=set)      # keys sent (the pytest plugin fills it)

    def get(self, key: str, with_model: bool = False):
        """The result trained this session for `key`, or None."""
        r = self.results.get(key)
        return None if r is None or (with_model and r.model is None) else r

    def check_missing(self, cfgs) -> None:
        """Raise RemoteRunError if any of `cfgs` was sent and failed or never came back; runs that
        were never sent (in-memory data) are the caller's to train."""
        for cfg in cfgs:
            key = cfg.key()
            if key in self.errors:
                raise RemoteRunError(f"run {cfg.label()} failed on the executor: {self.errors[key]}")
            if key in self.planned:
                raise RemoteRunError(f"run {cfg.label()} was sent to the executor and did not come "
                                     f"back (interrupted, or its result could not be stored)")


def make_tasks(cfgs: list[RunConfig], *, keep_model: set[str] = frozenset(), data_root=None,
               gpus: float | None = None, cpus: float = 1.0, max_cohort: int = 16) -> list[CohortTask]:
    """One task per cohort of `cfgs` (plan_cohorts: the cohorts a local session would train).
    `gpus`: per task; None asks for 1 GPU when the runs are on CUDA, none otherwise."""
    tasks = []
    for i, cohort in enumerate(plan_cohorts(cfgs, max_cohort=max_cohort)):
        cuda = cohort[0].device.startswith("cuda")
        tasks.append(CohortTask(index=i, configs=[c.to_dict() for c in cohort],
                                keep_model=[c.key() for c in cohort if c.key() in keep_model],
                                data_root=None if data_root is None else str(data_root),
                                gpus=(1.0 if cuda else 0.0) if gpus is None else float(gpus), cpus=cpus))
    return tasks


def dispatch(executor: Executor, tasks: list[CohortTask], cache: ResultsCache, *,
             estimates: dict | None = None, say: Callable[[str], None] = print) -> Dispatch:
    """Send `tasks`, store each result in `cache` as it arrives; `estimates`: key -> seconds (the
    plan's), for the ETA. Returns the Dispatch; raises KeyboardInterrupt after cancelling."""
    out = Dispatch()
    total = sum(len(t.configs) for t in tasks)
    est = dict(estimates or {})
    est_total = sum(est.get(k, 0.0) for t in tasks for k in t.keys)
    slots = max(1, min(len(tasks), executor.slots(tasks[0]) if tasks else 1))
    t0 = time.perf_counter()
    done_est = 0.0

    def progress():
        """One line per arrival: runs done/total, cohorts running, ETA."""
        now = time.perf_counter()
        done = len(out.results) + len(out.errors)
        elapsed = now - t0
        left = est_total - done_est
        if done_est > 0:      # the plan's estimate, calibrated by how long the done runs took
            eta = left * elapsed / done_est
        else:
            eta = left / slots
        say(f"[{executor.name}] runs {done}/{total}, cohorts running {executor.running()}, "
            f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s" + (f", {len(out.errors)} failed" if out.errors else ""))

    if not tasks:
        return out
    say(f"[{executor.name}] sending {len(tasks)} cohorts ({total} runs) to {executor.describe()}")
    try:
        for outcome in executor.submit(tasks):
            for answer in outcome.results:
                key = answer["key"]
                if answer.get("error") is not None:
                    out.errors[key] = answer["error"]
                    continue
                result = result_from_wire(answer)
                result.provenance.setdefault("executor", dict(outcome.node))["attempt"] = outcome.attempt
                cache.put(result)          # atomic (temp file + rename): a Ctrl-C leaves no half entry
                out.results[key] = result
                done_est += est.get(key, 0.0)
            out.cohorts.append({"index": outcome.index, "keys": [a["key"] for a in outcome.results],
                                "node": outcome.node, "attempt": outcome.attempt,
                                "seconds": round(outcome.seconds, 3),
                                "failed": [a["key"] for a in outcome.results if a.get("error")]})
            progress()
    except KeyboardInterrupt:
        executor.cancel()
        say(f"[{executor.name}] interrupted: cancelled what was outstanding; {len(out.results)} "
            f"finished runs are in the cache, a rerun trains only the rest")
        raise
    finally:
        out.seconds = time.perf_counter() - t0
    return out

"""The `run` fixture's machinery: how a claim test gets its training runs.

`Runner(request, state)(model=..., corruption=..., seed=...)` builds the scale's RunConfig, looks it
up in the results cache, and trains what is missing: under the cache's per-key lock (another
session or xdist worker may be training the same run), timed once by pytest-benchmark, with a
progress line on the terminal, through `train_many`'s stacked cohorts on CUDA, solo otherwise.
Under `--plan` it records the configs and trains nothing (engine/plan.py). Every result it hands
out is also recorded on the test item (`RUNS_KEY`) for results.json.
"""
from __future__ import annotations

import time

import pytest

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.cohort import train_many
from rethinkbench.engine.train import train

EVIDENCE_KEY = pytest.StashKey["ItemEvidence"]()
RUNS_KEY = pytest.StashKey[dict]()
PROGRESS_EVERY_S = 30.0   # a long run prints a progress line at most this often


class Runner:
    def __init__(self, request, state):
        self.request, self.state = request, state
        self.benchmark = None
        self.benchmark_used = False
        self.timings: list[dict] = []

    def config(self, **overrides):
        overrides.pop("data", None)
        overrides.setdefault("dataset", self.state.dataset)
        if getattr(self.state, "lr", None) is not None:   # --lr: every run of the session
            overrides.setdefault("lr", self.state.lr)
        return self.state.scale.config(**overrides)

    def __call__(self, **overrides):
        """One run. `keep_model=True` attaches the trained network as `result.model` (stored in
        the cache beside the result). `data=Dataset` trains on that in-memory dataset; its `dataset` name must then
        be a unique "custom:..." id, since the cache knows the data only by that name."""
        return self.many([overrides])[0]

    def many(self, overrides_list):
        overrides_list = [dict(o) for o in overrides_list]
        for o in overrides_list:
            if "data" in o and not str(o.get("dataset", "")).startswith("custom:"):
                raise UsageError(f"run(data=...) needs dataset='custom:<unique id>', got {o.get('dataset')!r}")
        keep = {bool(o.pop("keep_model", False)) for o in overrides_list}
        self._keep_model = True in keep
        cfgs = [self.config(**o) for o in overrides_list]
        self._data = {c.key(): o["data"] for c, o in zip(cfgs, overrides_list) if "data" in o}
        plan = getattr(self.state, "plan", None)
        if plan is not None:   # --plan: say which runs, train none (and how they would be grouped)
            if self._keep_model:   # an executor ships these runs' weights back (engine/executors/)
                plan.keep_model.update(c.key() for c in cfgs)
            return plan.request(cfgs, self.request.node.nodeid, data=self._data, keep_model=self._keep_model,
                                stacks=_stacks(self.state, cfgs, self._data, self._keep_model))
        unique = {c.key(): c for c in cfgs}   # a config asked for twice is looked up once
        cache = self.state.cache
        remote = getattr(self.state, "remote", None)   # --executor: runs trained before the loop
        hits = {k: (remote.get(k, self._keep_model) if remote is not None else None)
                or cache.get(c, with_model=self._keep_model) for k, c in unique.items()}
        todo = [c for k, c in unique.items() if hits[k] is None]
        if todo and remote is not None:
            remote.check_missing(todo)   # a run the executor failed to train: an error, not a retrain
        if todo:
            # Another session or xdist worker sharing the cache may be training some of these:
            # wait for their locks (none when the cache is off), look again, train what is left.
            with cache.locked(todo):
                hits.update((c.key(), cache.get(c, with_model=self._keep_model)) for c in todo)
                todo = [c for c in todo if hits[c.key()] is None]
                if todo:
                    for cfg, res in zip(todo, self._timed_train(todo)):
                        hits[cfg.key()] = res
        results = [hits[c.key()] for c in cfgs]
        for r in results:
            self._record(r)
        return results

    def _timed_train(self, cfgs):
        """Train `cfgs`; the first training in a test is timed by pytest-benchmark (one round)."""
        def train_all():
            if _stacks(self.state, cfgs, self._data, self._keep_model):
                out = _train_cohorts(cfgs, self.state)   # CUDA: seeds and levels as one stacked model
                for r in out:
                    self.state.cache.put(r)
                return out
            out = []
            for c in cfgs:  # a run that raises is never stored
                out.append(_train_with_progress(c, self.state, self._data.get(c.key()), self._keep_model))
                self.state.cache.put(out[-1])
            return out

        bench = self._benchmark()
        if bench is not None and not self.benchmark_used:
            self.benchmark_used = True
            bench.group = self._claim_id()
            out = bench.pedantic(train_all, rounds=1, iterations=1, warmup_rounds=0)
        else:
            out = train_all()
        self.timings += [{"key": r.config.key(), "run": r.config.label(), "train_seconds": r.wall_seconds}
                         for r in out]
        if bench is not None:
            bench.extra_info["runs"] = self.timings
        return out

    def _benchmark(self):
        if self.benchmark is None:
            try:
                self.benchmark = self.request.getfixturevalue("benchmark")
            except pytest.FixtureLookupError:   # pytest-benchmark not installed: time ourselves
                self.benchmark = False
        return self.benchmark or None

    def _claim_id(self):
        ev = self.request.node.stash.get(EVIDENCE_KEY, None)
        return ev.id if ev is not None else None

    def _record(self, result):
        ev = self.request.node.stash.get(EVIDENCE_KEY, None)
        if ev is None:
            return
        key = result.config.key()
        ev.runs.append(key)
        runs = self.request.node.stash.setdefault(RUNS_KEY, {})
        runs[key] = run_entry(result)


def run_entry(result) -> dict:
    d = result.to_dict()
    d.pop("provenance", None)
    per_example = d.pop("per_example_correct", None)
    d["cached"] = result.cached
    d["train_seconds"] = round(result.wall_seconds, 3)
    d["device_kind"] = result.provenance.get("device_kind")
    d["trained_on"] = {k: result.provenance.get(k) for k in ("date", "git_commit", "torch", "device_name")}
    if per_example is not None:
        d["per_example_correct_count"] = sum(per_example)
    return d


def _stacks(state, cfgs, data: dict, keep_model: bool) -> bool:
    """Train `cfgs` with train_many's stacked cohorts? Only on CUDA (on CPU a stacked run rounds
    differently from the solo runs the cpu baseline holds), for built-in data (a cohort shares one
    dataset) and when no trained network is kept (a cohort keeps its members' weights stacked)."""
    return state.device.startswith("cuda") and len(cfgs) > 1 and not data and not keep_model


def _train_cohorts(cfgs, state):
    results = train_many(cfgs, data_root=state.data_root, on_epoch=_progress(state))
    for r in results:
        _say(state, f"  trained {r.config.label()} (cohort of {r.provenance.get('cohort', {}).get('size', 1)}): "
                    f"{_fit_text(r)} ({r.wall_seconds:.1f} s)")
    return results


def _fit_text(res) -> str:
    fit = f"fit at epoch {res.epochs_to_fit}" if res.fitted else f"not fitted in {len(res.history)} epochs"
    return f"{fit}, train acc {res.final_train_acc:.4f}, test acc {res.final_test_acc:.4f}"


def _say(state, msg: str) -> None:
    """A progress line on the terminal, past output capture; silent under -q -q."""
    tr = state.config.pluginmanager.get_plugin("terminalreporter")
    capman = state.config.pluginmanager.get_plugin("capturemanager")
    if state.config.option.verbose < 0 or tr is None:
        return
    if capman is not None:
        with capman.global_and_fixture_disabled():
            tr.write_line(msg)
    else:
        tr.write_line(msg)


def _progress(state):
    """on_epoch callback: a progress line per run at most every PROGRESS_EVERY_S seconds."""
    last = [time.perf_counter()]

    def on_epoch(c, rec):
        if time.perf_counter() - last[0] > PROGRESS_EVERY_S:
            last[0] = time.perf_counter()
            _say(state, f"  … {c.label()}: epoch {rec['epoch']}/{c.max_epochs}, loss "
                        f"{rec['train_loss']:.3f}, train acc {rec['train_acc']:.3f}")
    return on_epoch


def _train_with_progress(cfg, state, data=None, keep_model=False):
    res = train(cfg, dataset=data, data_root=state.data_root, on_epoch=_progress(state),
                keep_model=keep_model)
    if res.wall_seconds > 2.0:
        _say(state, f"  trained {cfg.label()}: {_fit_text(res)} ({res.wall_seconds:.1f} s)")
    return res

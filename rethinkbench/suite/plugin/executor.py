"""--executor local|ray|submitit: the selection's runs trained by an executor before the test loop,
then the claims run from what it trained (no training on the driver).

The flow (pytest_runtestloop, before pytest's own loop):
1. plan the selection exactly as --plan does: `pytest <the same arguments> --plan` in a child
   process, which writes its plan (configs, cached or not, estimated seconds) to a JSON file;
2. drop what the cache has, group the rest into cohorts (engine/cohort.py's plan_cohorts);
3. start or join the backend and check it can run them (a GPU plan on a cluster without GPUs is a
   usage error before anything is sent, never a hang);
4. send one task per cohort, write each result into the cache as it arrives, a progress line per
   cohort; a run that failed for good is an error verdict of the claims that need it;
5. pytest's loop runs the claims; their `run` fixture finds every run trained (suite/runner.py).

reports/executor.json records where each cohort trained, how long it took, and what failed.
Runs on in-memory data (`run(data=...)`, dataset "custom:...") cannot be shipped: they train on
the driver as usual.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rethinkbench.engine.executors import BACKENDS, ExecutorError, check_resources, dispatch, make_tasks
from rethinkbench.engine.executors.driver import Dispatch
from rethinkbench.engine.executors.settings import load_settings
from rethinkbench.suite.plugin.keys import PLAN_KEY, STATE_KEY

PLAN_OUT_ENV = "RETHINKBENCH_PLAN_OUT"   # the child --plan session writes its plan here
EXECUTOR_KEY = pytest.StashKey[dict]()
EXTRAS = {"ray": ("ray", "ray"), "submitit": ("submitit", "slurm")}   # backend -> (module, extra)


def _backend(value: str) -> str:
    if value not in BACKENDS:
        raise argparse.ArgumentTypeError(f"--executor must be one of {', '.join(BACKENDS)}; got {value!r}")
    return value


def pytest_addoption(parser):
    g = parser.getgroup("rethinkbench")
    g.addoption("--executor", type=_backend, default=None, metavar="NAME",
                help="train the selection's runs first on an executor, then run the claims from the "
                     "cache: local (this process) | ray (a Ray cluster) | submitit (Slurm job arrays) "
                     "(default: none, each test trains its runs as it goes); see docs/cluster.md")
    g.addoption("--executor-address", default=None, metavar="ADDR",
                help="the Ray cluster to join: auto | host:port | ray://host:10001 (default: a "
                     "private local Ray instance on this machine, on 127.0.0.1)")
    g.addoption("--executor-config", type=Path, default=None, metavar="FILE",
                help="a TOML file of executor settings: resources per cohort, retries, timeouts, "
                     "Ray runtime_env, submitit's Slurm parameters (default: none; examples in "
                     "docs/cluster.md)")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    opt = config.option
    if os.environ.get(PLAN_OUT_ENV) and config.option.plan:
        config.pluginmanager.register(_PlanDump(os.environ[PLAN_OUT_ENV]), "rethinkbench-plan-dump")
    if opt.executor is None:
        if opt.executor_address or opt.executor_config:
            raise pytest.UsageError("--executor-address and --executor-config need --executor NAME "
                                    f"({' | '.join(BACKENDS)})")
        return
    if getattr(opt, "numprocesses", None):
        raise pytest.UsageError(f"--executor {opt.executor} spreads the runs itself: drop -n/--numprocesses")
    if opt.executor in EXTRAS:
        module, extra = EXTRAS[opt.executor]
        try:
            __import__(module)   # only to say now, not after planning, that the extra is missing
        except ImportError:
            raise pytest.UsageError(f"--executor {opt.executor} needs the optional extra: "
                                    f"pip install -e \".[{extra}]\" (it installs {module})") from None
    if opt.executor_address and opt.executor != "ray":
        raise pytest.UsageError(f"--executor-address is Ray's; --executor {opt.executor} takes its "
                                f"settings from --executor-config")
    try:
        settings = load_settings(opt.executor_config) if opt.executor_config else {}
    except ExecutorError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[EXECUTOR_KEY] = settings


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    config = session.config
    settings = config.stash.get(EXECUTOR_KEY, None)
    if settings is None or config.option.collectonly or PLAN_KEY in config.stash or not session.items:
        return None
    state = config.stash[STATE_KEY]
    say = _sayer(config)
    t0 = time.perf_counter()
    runs, keep = _plan(config, say)
    todo = [r for r in runs if not r["cached"] and not r["config"]["dataset"].startswith("custom:")]
    from rethinkbench.engine.config import RunConfig   # torch: loaded by the plugin already
    cfgs = [RunConfig.from_dict(r["config"]) for r in todo]
    cfgs = [c for c in cfgs if state.cache.get(c, with_model=c.key() in keep) is None]
    common = settings.get("executor", {})
    tasks = make_tasks(cfgs, keep_model=keep, data_root=state.data_root,
                       gpus=common.get("gpus_per_cohort"), cpus=common.get("cpus_per_cohort", 1),
                       max_cohort=common.get("max_cohort", 16))
    plan_s = time.perf_counter() - t0
    record = {"backend": config.option.executor, "planned_runs": len(runs), "to_train": len(cfgs),
              "cohorts": len(tasks), "plan_seconds": round(plan_s, 2)}
    remote = Dispatch(planned={c.key() for c in cfgs})
    state.remote = remote
    if not tasks:
        say(f"[{config.option.executor}] nothing to train: every planned run is in the cache")
        return None
    t1 = time.perf_counter()
    try:
        from rethinkbench.engine.executors import make_executor   # only a session with --executor pays for it
        executor = make_executor(config.option.executor, settings.get(config.option.executor, {}),
                                 config.option.executor_address)
        record["startup_seconds"] = round(time.perf_counter() - t1, 2)
        record["resources"] = executor.resources()
        check_resources(tasks, record["resources"], executor.describe())
    except ExecutorError as exc:
        raise pytest.UsageError(str(exc)) from None
    estimates = {r["key"]: r.get("seconds", 0.0) for r in todo}
    try:
        done = dispatch(executor, tasks, state.cache, estimates=estimates, say=say)
        remote.results, remote.errors, remote.cohorts = done.results, done.errors, done.cohorts
        record.update(dispatch_seconds=round(done.seconds, 2), log=done.cohorts, errors=done.errors)
        nodes = {c["node"].get("node") for c in done.cohorts if c["node"].get("node")}
        say(f"[{executor.name}] {len(done.results)} runs trained on {len(nodes)} node(s) in "
            f"{done.seconds:.1f} s" + (f"; {len(done.errors)} failed (their claims are errors)"
                                      if done.errors else ""))
    finally:
        executor.close()
        _write_record(state.report_dir, record)
    return None


def _plan(config, say) -> tuple[list[dict], set[str]]:
    """The selection's plan from `pytest <same args> --plan` in a child process."""
    args = list(config.invocation_params.args)
    fd, out = tempfile.mkstemp(prefix="rethinkbench-plan-", suffix=".json")
    os.close(fd)
    try:
        env = {**os.environ, PLAN_OUT_ENV: out}
        say(f"[{config.option.executor}] planning the selection (pytest --plan) ...")
        proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--plan", "-q", "-p", "no:randomly"],
                              cwd=config.invocation_params.dir, env=env, capture_output=True, text=True)
        try:
            blob = json.loads(Path(out).read_text())
        except (OSError, ValueError):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise pytest.UsageError(f"--executor: planning the selection failed (pytest --plan exited "
                                    f"{proc.returncode}):\n{tail}") from None
    finally:
        Path(out).unlink(missing_ok=True)
    for line in [ln for ln in blob.get("lines", []) if ln.strip()][-2:]:   # the plan's totals
        say(f"  {line}")
    return blob["runs"], set(blob.get("keep_model", []))


class _PlanDump:
    """In the child --plan session: the plan as JSON, once print_plan has estimated it."""

    def __init__(self, path: str):
        self.path = path

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, config):
        plan = config.stash.get(PLAN_KEY, None)
        if plan is None:
            return
        state = config.stash[STATE_KEY]
        runs = [{"key": k, "config": r.config.to_dict(), "cached": r.cached, "seconds": r.seconds}
                for k, r in plan.runs.items()]
        blob = {"runs": runs, "keep_model": sorted(getattr(plan, "keep_model", ())),
                "lines": plan.lines(state.device)}
        Path(self.path).write_text(json.dumps(blob))


def _write_record(report_dir: Path, record: dict) -> None:
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "executor.json").write_text(json.dumps(record, indent=1, default=str))
    except OSError:
        pass   # a record of where runs trained must not fail the session


def _sayer(config):
    tr = config.pluginmanager.get_plugin("terminalreporter")

    def say(msg: str) -> None:
        if tr is not None and config.option.verbose >= 0:
            tr.write_line(msg)
    return say

"""The Ray backend: one Ray task per cohort, on any Ray cluster (a workstation, a Slurm allocation
running `ray start`, KubeRay on Kubernetes).

`address`: None or "local" starts a private Ray instance on this machine, bound to 127.0.0.1
(never `ray.init()` without an address: it silently joins a leftover cluster, and a default start
binds the machine's external address); "auto" joins the cluster `ray start` made here;
"host:port" or "ray://host:10001" joins that one. Tasks ask for `cpus` and `gpus` per cohort
(1 GPU on CUDA: Ray then sets the task's CUDA_VISIBLE_DEVICES), spread over the nodes, retried
`max_retries` times when their worker or node dies (a run's own exception is not retried: it would
fail again); GPU tasks start a fresh process each, which is why whole cohorts are sent, not runs.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

from rethinkbench.engine.executors.base import (CohortOutcome, CohortTask, Executor, ExecutorError,
                                                train_cohort_task)


def _ray():
    try:
        import ray   # the optional extra: only sessions with --executor ray need it
    except ImportError:
        raise ExecutorError('--executor ray needs Ray: pip install -e ".[ray]" '
                            '(or pip install "ray[default]")') from None
    return ray


def _train_on_node(task: dict) -> dict:
    """The Ray task: the worker's side of executors/base.py, told which node it is on."""
    import ray   # inside a Ray worker, where ray is installed by definition
    return train_cohort_task(task, backend="ray", node=ray.get_runtime_context().get_node_id())


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = 3, runtime_env: dict | None = None,
                 spread: bool = True, num_cpus: int | None = None, temp_dir: str | None = None,
                 timeout_s: float | None = None):
        ray = self._ray = _ray()
        self.max_retries = int(max_retries)
        self.spread = spread
        self.timeout_s = timeout_s
        self._pending: dict = {}
        self._owns = False
        if ray.is_initialized():      # the caller connected already (a script, a test)
            return
        kwargs = {"runtime_env": runtime_env} if runtime_env else {}
        try:
            if address in (None, "", "local"):
                # A fresh private instance on loopback, never a leftover cluster.
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                         _node_ip_address="127.0.0.1", _temp_dir=temp_dir, **kwargs,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ExecutorError(f"could not start or reach a Ray cluster at "
                                f"{address or 'local'!r}: {exc}") from None
        self._owns = True

    def resources(self) -> dict:
        res = self._ray.cluster_resources()
        nodes = sum(1 for n in self._ray.nodes() if n.get("Alive"))
        return {"CPU": res.get("CPU", 0.0), "GPU": res.get("GPU", 0.0), "nodes": nodes}

    def describe(self) -> str:
        r = self.resources()
        return f"Ray ({r['nodes']} nodes, {r['CPU']:g} CPUs, {r['GPU']:g} GPUs)"

    def slots(self, task: CohortTask) -> int:
        r = self.resources()
        kinds = [r[k] / need for k, need in (("GPU", task.gpus), ("CPU", task.cpus)) if need > 0]
        return max(1, int(min(kinds))) if kinds else 1

    def running(self) -> int:
        return len(self._pending)

    def submit(self, tasks: list[CohortTask]) -> Iterator[CohortOutcome]:
        ray = self._ray
        remote = ray.remote(_train_on_node)
        strategy = "SPREAD" if self.spread else "DEFAULT"
        self._pending = {}
        for t in tasks:
            ref = remote.options(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=self.max_retries,
                                 retry_exceptions=False, scheduling_strategy=strategy,
                                 name=f"rethinkbench-cohort-{t.index}").remote(t.to_dict())
            self._pending[ref] = (t, time.monotonic())
        while self._pending:
            ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=5.0)
            if not ready:
                self._expire()
                continue
            ref = ready[0]
            task, started = self._pending.pop(ref)
            try:
                answer = ray.get(ref)
            except Exception as exc:   # noqa: BLE001 - retries spent (node died again, OOM): an error per run
                yield _failed(task, f"{type(exc).__name__}: {_first_line(exc)} (after {self.max_retries} "
                                    f"retries on Ray)", time.monotonic() - started)
                continue
            yield CohortOutcome(answer["index"], answer["results"], answer["node"], answer["seconds"])

    def _expire(self) -> None:
        """Cancel tasks older than timeout_s (since sent): they come back as failed."""
        if not self.timeout_s:
            return
        now = time.monotonic()
        for ref, (_, sent) in list(self._pending.items()):
            if now - sent > self.timeout_s:
                self._ray.cancel(ref, force=True)

    def cancel(self) -> None:
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:   # noqa: BLE001 - already finished or gone: nothing to stop
                pass
        self._pending = {}

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def _failed(task: CohortTask, why: str, seconds: float) -> CohortOutcome:
    return CohortOutcome(task.index, [{"key": k, "result": None, "error": why} for k in task.keys],
                         {"backend": "ray", "node": None, "hostname": None, "pid": None}, seconds)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""

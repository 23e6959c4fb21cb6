"""The submitit backend: one Slurm job-array task per cohort, for clusters that offer only Slurm.

The tasks are submitted as one array (`executor.batch()`), at most `array_parallelism` running at
once, with the Slurm parameters of --executor-config (`partition`, `timeout_min`, `gpus_per_task`,
`cpus_per_task`, `mem_gb`, `setup` lines run before the task, any other `slurm_*` key as is).
submitit hands each answer back through pickles in `folder`, so that folder must be on a
filesystem the nodes share with the driver: a folder under /tmp, /var/tmp or /dev/shm (node-local
by convention) is refused for Slurm, unless `folder_is_shared = true` says this cluster mounts it
on every node. Without Slurm (`cluster = "local"`) submitit's local executor
runs the same jobs as real subprocesses of this machine.

A job that fails as a job (node failure, preemption, time limit) is resubmitted up to `max_retries`
times; a run's own exception comes back as that run's error and is not retried.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from rethinkbench.engine.executors.base import (CohortOutcome, CohortTask, Executor, ExecutorError,
                                                train_cohort_task)

NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm")
POLL_S = 1.0


def _submitit():
    try:
        import submitit   # the optional extra: only sessions with --executor submitit need it
    except ImportError:
        raise ExecutorError('--executor submitit needs submitit: pip install -e ".[slurm]" '
                            '(or pip install submitit)') from None
    return submitit


def _train_in_job(task: dict) -> dict:
    """The array task: the worker's side of executors/base.py, named by its Slurm job id."""
    import submitit   # inside a submitit job, where it is installed by definition
    try:
        env = submitit.JobEnvironment()
        node = f"{env.hostname} (job {env.job_id})"
    except RuntimeError:
        node = None
    return train_cohort_task(task, backend="submitit", node=node)


class SubmititExecutor(Executor):
    name = "submitit"

    def __init__(self, folder, *, cluster: str | None = None, max_retries: int = 2,
                 partition: str | None = None, timeout_min: int = 60, gpus_per_task: int = 0,
                 cpus_per_task: int = 1, mem_gb: float | None = None, array_parallelism: int = 64,
                 setup: list[str] | None = None, slurm: dict | None = None, folder_is_shared: bool = False):
        submitit = self._submitit = _submitit()
        self.folder = Path(folder).absolute()
        self.cluster = cluster
        if cluster in (None, "slurm") and not folder_is_shared and any(str(self.folder).startswith(p + "/") or str(self.folder) == p
                                              for p in NODE_LOCAL):
            raise ExecutorError(f"executor folder {self.folder} is node-local ({', '.join(NODE_LOCAL)}); "
                                f"Slurm jobs answer through it, so put it on a filesystem the nodes "
                                f"share (folder = ... in --executor-config; folder_is_shared = true if this one is)")
        self.max_retries = int(max_retries)
        self.ex = submitit.AutoExecutor(folder=self.folder, cluster=cluster)
        params = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_task,
                  "cpus_per_task": cpus_per_task, "slurm_array_parallelism": array_parallelism,
                  "name": "rethinkbench"}
        if mem_gb is not None:
            params["mem_gb"] = mem_gb
        if partition:
            params["slurm_partition"] = partition
        if setup:
            params["slurm_setup"] = list(setup)
        for k, v in (slurm or {}).items():
            params[k if k.startswith("slurm_") else f"slurm_{k}"] = v
        try:
            self.ex.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise ExecutorError(f"submitit refused the Slurm parameters {params}: {exc}") from None
        self._pending: dict = {}

    def resources(self) -> dict:
        # Slurm decides per job; only a local run knows its machine.
        if self.ex.cluster == "local":
            return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count()), "nodes": 1}
        return {"CPU": None, "GPU": None, "nodes": None}

    def describe(self) -> str:
        return f"submitit ({self.ex.cluster}, folder {self.folder})"

    def running(self) -> int:
        return len(self._pending)

    def _send(self, tasks: list[CohortTask], attempt: int = 1) -> None:
        with self.ex.batch():   # one job array for all of them
            jobs = [(t, self.ex.submit(_train_in_job, t.to_dict())) for t in tasks]
        for t, job in jobs:
            self._pending[job] = (t, attempt, time.monotonic())

    def submit(self, tasks: list[CohortTask]) -> Iterator[CohortOutcome]:
        self._pending = {}
        self._send(tasks)
        while self._pending:
            done = [j for j in self._pending if j.done()]
            if not done:
                time.sleep(POLL_S)
                continue
            for job in done:
                task, attempt, sent = self._pending.pop(job)
                try:
                    answer = job.result()
                except Exception as exc:   # noqa: BLE001 - the job failed as a job: retry, then an error
                    if attempt <= self.max_retries:
                        self._send([task], attempt + 1)
                        continue
                    why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                    yield CohortOutcome(task.index, [{"key": k, "result": None,
                                                      "error": f"{why} (job {job.job_id}, {attempt} attempts)"}
                                                     for k in task.keys],
                                        {"backend": "submitit", "node": None, "hostname": None, "pid": None},
                                        time.monotonic() - sent, attempt)
                    continue
                yield CohortOutcome(answer["index"], answer["results"], answer["node"], answer["seconds"], attempt)

    def cancel(self) -> None:
        for job in list(self._pending):
            try:
                job.cancel(check=False)
            except Exception:   # noqa: BLE001 - already finished or gone
                pass
        self._pending = {}

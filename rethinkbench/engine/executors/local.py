"""The local backend: the same tasks, trained one after another in this process. The reference
the cluster backends are compared with, and `pytest --executor local` (the executor's flow,
progress line and reports/executor.json, without a cluster)."""
from __future__ import annotations

import os

from collections.abc import Iterator

import torch

from rethinkbench.engine.executors.base import CohortOutcome, CohortTask, Executor, train_cohort_task


class LocalExecutor(Executor):
    name = "local"

    def __init__(self):
        self._running = 0

    def resources(self) -> dict:
        return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count()), "nodes": 1}

    def describe(self) -> str:
        return "this process"

    def running(self) -> int:
        return self._running

    def submit(self, tasks: list[CohortTask]) -> Iterator[CohortOutcome]:
        for t in tasks:
            self._running = 1
            answer = train_cohort_task(t.to_dict(), backend="local")
            self._running = 0
            yield CohortOutcome(answer["index"], answer["results"], answer["node"], answer["seconds"])

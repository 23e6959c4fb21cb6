"""Where a plan's runs train: this process (`local`), a Ray cluster (`ray`) or Slurm job arrays
through submitit (`submitit`). base.py is the interface and the worker's side, driver.py the
driver's loop (send, store as results arrive, progress), settings.py the --executor-config file.
Ray and submitit are optional extras, imported only inside their own modules."""
from __future__ import annotations

from rethinkbench.engine.executors.base import CohortTask, Executor, ExecutorError, check_resources
from rethinkbench.engine.executors.driver import Dispatch, dispatch, make_tasks
from rethinkbench.engine.executors.local import LocalExecutor

BACKENDS = ("local", "ray", "submitit")

__all__ = ["BACKENDS", "CohortTask", "Dispatch", "Executor", "ExecutorError", "check_resources",
           "dispatch", "make_executor", "make_tasks"]


def make_executor(name: str, settings: dict | None = None, address: str | None = None) -> Executor:
    """The backend `name` with its settings (settings.py's section for it)."""
    s = dict(settings or {})
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from rethinkbench.engine.executors.ray import RayExecutor   # imports ray, an optional extra
        configured = s.pop("address", None)
        return RayExecutor(address if address is not None else configured, **s)   # the option wins
    if name == "submitit":
        from rethinkbench.engine.executors.submitit import SubmititExecutor   # imports submitit, optional
        return SubmititExecutor(s.pop("folder", ".rethinkbench-submitit"), **s)
    raise ExecutorError(f"unknown executor {name!r}; known: {', '.join(BACKENDS)}")

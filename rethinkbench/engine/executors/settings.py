"""--executor-config FILE: a TOML file with one table per concern (docs/cluster.md has an example
per backend). Unknown tables or keys, and values of the wrong type, are errors that name them and
what is allowed: a typo must not silently fall back to a default and run somewhere else.

    [executor]            # every backend
    cpus_per_cohort = 1   # CPUs a cohort's task asks for
    gpus_per_cohort = 1   # GPUs a cohort's task asks for (default: 1 on CUDA, 0 on CPU; 0.5 shares one)
    max_cohort = 16       # runs per cohort at most

    [ray]                 # RayExecutor's keywords
    [submitit]            # SubmititExecutor's keywords
"""
from __future__ import annotations

import sys
from pathlib import Path

from rethinkbench.engine.executors.base import ExecutorError

_NUM = (int, float)
SCHEMA = {
    "executor": {"cpus_per_cohort": _NUM, "gpus_per_cohort": _NUM, "max_cohort": int},
    "ray": {"address": str, "max_retries": int, "runtime_env": dict, "spread": bool, "num_cpus": int,
            "temp_dir": str, "timeout_s": _NUM},
    "submitit": {"cluster": str, "folder": str, "max_retries": int, "partition": str, "timeout_min": int,
                 "gpus_per_task": int, "cpus_per_task": int, "mem_gb": _NUM, "array_parallelism": int,
                 "setup": list, "slurm": dict, "folder_is_shared": bool},
}


def load_settings(path) -> dict:
    """{table: {key: value}} from the TOML file at `path`, checked against SCHEMA."""
    if tuple(sys.version_info[:2]) >= (3, 11):
        import tomllib   # the standard library's TOML reader (3.11+)
    else:
        try:
            import tomli as tomllib   # the same reader as a package on Python 3.10
        except ImportError:
            raise ExecutorError(f"--executor-config {path}: reading TOML on Python "
                                f"{sys.version_info[0]}.{sys.version_info[1]} needs the "
                                f"`tomli` package (pip install tomli); Python 3.11+ has it built in") from None
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ExecutorError(f"--executor-config {p}: cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExecutorError(f"--executor-config {p} is not valid TOML: {exc}") from None
    return check_settings(data, str(p))


def check_settings(data: dict, where: str = "settings") -> dict:
    out = {}
    for table, values in data.items():
        if table not in SCHEMA:
            raise ExecutorError(f"{where}: unknown table [{table}]; known: "
                                f"{', '.join(f'[{t}]' for t in SCHEMA)}")
        if not isinstance(values, dict):
            raise ExecutorError(f"{where}: {table} must be a table ([{table}]), got {values!r}")
        for key, value in values.items():
            allowed = SCHEMA[table].get(key)
            if allowed is None:
                raise ExecutorError(f"{where}: unknown key {key!r} in [{table}]; known: "
                                    f"{', '.join(sorted(SCHEMA[table]))}")
            if isinstance(value, bool) and allowed is not bool or not isinstance(value, allowed):
                kind = allowed.__name__ if isinstance(allowed, type) else "a number"
                raise ExecutorError(f"{where}: [{table}] {key} must be {kind}, got {value!r}")
        out[table] = dict(values)
    ex = out.get("executor", {})
    for key in ("cpus_per_cohort", "gpus_per_cohort", "max_cohort"):
        if key in ex and ex[key] < (1 if key == "max_cohort" else 0):
            raise ExecutorError(f"{where}: [executor] {key} must be {'at least 1' if key == 'max_cohort' else '>= 0'}, "
                                f"got {ex[key]!r}")
    return out

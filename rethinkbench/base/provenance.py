"""Where a number came from: package versions, commit, machine, device, date."""
from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from rethinkbench.base.version import __version__

__all__ = ["provenance", "device_name", "device_kind", "git_commit"]


def _version() -> str:
    return __version__


@functools.lru_cache(maxsize=None)
def git_commit(path: str | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding this package, or (None, None) outside git."""
    where = path or str(Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                    capture_output=True, text=True, timeout=5).stdout.strip())
        if commit == "HEAD":  # a repository without commits yet
            commit = None
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, (dirty if commit else None)


@functools.lru_cache(maxsize=None)
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_name()


def device_kind(device: torch.device | str = "cpu") -> str:
    """What timings may be compared across: the device model, and for CPUs the thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device_name(device)}"
    return f"cpu:{_cpu_name()} x{torch.get_num_threads()}"   # inside a run: x1 (base/threads.py)


def provenance(device: torch.device | str = "cpu") -> dict:
    commit, dirty = git_commit()
    return {
        "rethinkbench_version": _version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a TorchVersion: execnet (xdist) cannot send it
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": device_name(device),
        "device_kind": device_kind(device),
        "intra_op_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "argv": " ".join(sys.argv[:1]),
        "pid": os.getpid(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }

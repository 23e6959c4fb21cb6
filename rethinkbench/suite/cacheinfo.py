"""`rethinkbench cache info`: what the results cache holds (entries, size, by model and scale),
read from its files; nothing is loaded into torch and nothing is changed."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rethinkbench.engine.cache import ResultsCache
from rethinkbench.harness.models import MODELS
from rethinkbench.suite.scales import SCALES


def scale_of(config: dict) -> str:
    """The scale whose setting for the run's model has its width on its kind of device (smoke and
    cpu narrow the conv nets differently; paper is CUDA); "other" for a plugin model, whose width
    is 1 at every scale, or a width no scale uses."""
    model, width = config.get("model"), config.get("width")
    if model not in MODELS:
        return "other"
    on_cuda = str(config.get("device", "cpu")).startswith("cuda")
    names = [name for name, scale in SCALES.items()
             if scale.setting(model).width == width and (name == "paper") == on_cuda]
    return names[0] if len(names) == 1 else "other"


def cache_info(directory: Path) -> dict:
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    total, size, unreadable = 0, 0, 0
    for _, config, nbytes in ResultsCache(directory).entries():
        total += 1
        size += nbytes
        if config is None:
            unreadable += 1
            continue
        group = groups[(str(config.get("model")), str(config.get("dataset")), scale_of(config))]
        group[0] += 1
        group[1] += nbytes
    return {"dir": str(directory), "entries": total, "bytes": size, "unreadable": unreadable,
            "groups": [{"model": m, "dataset": d, "scale": s, "entries": n, "bytes": b}
                       for (m, d, s), (n, b) in sorted(groups.items())]}


def format_cache_info(info: dict) -> str:
    if not info["entries"]:
        return f"the cache at {info['dir']} holds no runs"
    lines = [f"{info['entries']} cached run(s), {_size(info['bytes'])}, in {info['dir']}"
             + (f" ({info['unreadable']} unreadable: a miss when looked up)" if info["unreadable"] else "")]
    rows = [("model", "dataset", "scale", "runs", "size")] + [
        (g["model"], g["dataset"], g["scale"], str(g["entries"]), _size(g["bytes"])) for g in info["groups"]]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"

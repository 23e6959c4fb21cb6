"""Results cache: one JSON file per RunConfig key, so a run shared by several claims trains once.

Semantics follow pytest's cacheprovider: the directory is created atomically with a .gitignore; an
unreadable or mismatched entry is a miss (with a warning), never a crash; a failed write is a
warning; writes go to a temp file and are renamed into place, so an interrupted run leaves no
half-written entry. Only finished runs are stored: a run that raised is never cached.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

from .config import HARNESS_VERSION, RunConfig
from .train import RunResult

DEFAULT_DIR = ".rethinkbench-cache"


class CacheWarning(UserWarning):
    pass


class ResultsCache:
    def __init__(self, directory: str | os.PathLike = DEFAULT_DIR, enabled: bool = True):
        self.dir = Path(directory)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, cfg: RunConfig) -> Path:
        return self.dir / f"{cfg.key()}.json"

    def model_path(self, cfg: RunConfig) -> Path:
        return self.dir / f"{cfg.key()}.pt"

    def get(self, cfg: RunConfig, with_model: bool = False) -> RunResult | None:
        """The stored result of `cfg`, or None (a miss) if absent, unreadable or not this config.
        `with_model`: also load the trained weights into `result.model` (a miss without them)."""
        if not self.enabled:
            return None
        path = self.path(cfg)
        if not path.exists() or (with_model and not self.model_path(cfg).exists()):
            self.misses += 1
            return None
        try:
            blob = json.loads(path.read_text())
            if not isinstance(blob, dict):
                raise ValueError(f"entry is a JSON {type(blob).__name__}, not an object")
            if blob.get("harness") != HARNESS_VERSION or blob["result"]["config"] != cfg.to_dict():
                raise ValueError("entry belongs to another config or harness version")
            result = RunResult.from_dict(blob["result"])
            if with_model:
                result.model = self._load_model(cfg)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            warnings.warn(CacheWarning(f"ignoring unreadable cache entry {path}: {exc}"), stacklevel=2)
            self.misses += 1
            return None
        result.cached = True
        self.hits += 1
        return result

    def _load_model(self, cfg: RunConfig):
        import torch

        from .models import build_model

        state = torch.load(self.model_path(cfg), map_location=cfg.device, weights_only=True)
        model = build_model(cfg.model, tuple(state.pop("__in_shape__").tolist()),
                            int(state.pop("__num_classes__")), cfg.width, cfg.dropout)
        model.load_state_dict(state)
        return model.to(cfg.device).eval()

    def put(self, result: RunResult) -> Path | None:
        if not self.enabled:
            return None
        path = self.path(result.config)
        try:
            self._ensure_dir()
            if result.model is not None:
                self._save_model(result)
            blob = json.dumps({"harness": HARNESS_VERSION, "result": result.to_dict()})
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(blob)
                os.replace(tmp, path)  # atomic: readers see the old entry or the whole new one
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            warnings.warn(CacheWarning(f"could not write cache entry {path}: {exc}"), stacklevel=2)
            return None
        return path

    def _save_model(self, result: RunResult) -> None:
        import torch

        model = result.model
        in_shape = model.in_shape  # set by build_model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        state["__in_shape__"] = torch.tensor(in_shape)
        state["__num_classes__"] = torch.tensor(_num_classes(model))
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.model_path(result.config))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> int:
        """Remove every entry (and stray temp files); returns how many entries were removed."""
        if not self.dir.exists():
            return 0
        removed = 0
        for p in self.dir.glob("*.pt"):
            p.unlink(missing_ok=True)
        for p in self.dir.glob("*.json"):
            p.unlink(missing_ok=True)
            removed += not p.name.startswith(".tmp-")
        return removed

    def __len__(self) -> int:
        return sum(1 for p in self.dir.glob("*.json") if not p.name.startswith(".tmp-")) if self.dir.exists() else 0

    def _ensure_dir(self) -> None:
        if self.dir.is_dir():
            return
        # Build it aside, then rename, so no one ever sees a cache dir without its .gitignore.
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-cache-", dir=self.dir.parent))
        (tmp / ".gitignore").write_text("# created by rethinkbench\n*\n")
        try:
            tmp.rename(self.dir)
        except OSError:  # someone else created it first
            (tmp / ".gitignore").unlink(missing_ok=True)
            tmp.rmdir()


def cached_train(cfg: RunConfig, cache: ResultsCache | None, train_fn, **kwargs) -> RunResult:
    """cache.get(cfg) or train and store. Failures propagate and are not stored."""
    if cache is not None:
        hit = cache.get(cfg)
        if hit is not None:
            return hit
    result = train_fn(cfg, **kwargs)
    if cache is not None:
        cache.put(result)
    return result


def _num_classes(model) -> int:
    import torch

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    return last.out_features

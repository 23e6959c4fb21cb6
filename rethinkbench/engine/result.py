"""RunResult: what one training run measured (its config, per-epoch history, fit, accuracies,
time, provenance), as data: to_dict / from_dict for the cache and results.json."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rethinkbench.engine.config import RunConfig

__all__ = ["RunResult"]


@dataclass
class RunResult:
    config: RunConfig
    history: list[dict]
    epochs_to_fit: int | None
    steps_to_fit: int | None
    final_train_acc: float
    final_test_acc: float
    best_test_acc: float
    wall_seconds: float
    provenance: dict = field(default_factory=dict)
    per_example_correct: list[int] | None = None
    collapsed: bool = False  # stopped early: loss stuck at ln(K) for cfg.stall_epochs epochs
    cached: bool = False     # set by the cache when this result was loaded, not trained
    model: torch.nn.Module | None = field(default=None, repr=False)  # only with keep_model

    @property
    def fitted(self) -> bool:
        return self.steps_to_fit is not None

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "key": self.config.key(), "history": self.history,
                "epochs_to_fit": self.epochs_to_fit, "steps_to_fit": self.steps_to_fit,
                "final_train_acc": self.final_train_acc, "final_test_acc": self.final_test_acc,
                "best_test_acc": self.best_test_acc, "wall_seconds": self.wall_seconds,
                "provenance": self.provenance, "per_example_correct": self.per_example_correct,
                "collapsed": self.collapsed}

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        return cls(config=RunConfig.from_dict(d["config"]), history=d["history"],
                   epochs_to_fit=d["epochs_to_fit"], steps_to_fit=d["steps_to_fit"],
                   final_train_acc=d["final_train_acc"], final_test_acc=d["final_test_acc"],
                   best_test_acc=d["best_test_acc"], wall_seconds=d["wall_seconds"],
                   provenance=d.get("provenance", {}), per_example_correct=d.get("per_example_correct"),
                   collapsed=d.get("collapsed", False))

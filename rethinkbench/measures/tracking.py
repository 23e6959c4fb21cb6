"""Per-epoch spectral quantities (Bartlett, Foster & Telgarsky 2017, Fig. 1): what the training
loop records every epoch of a run with `RunConfig.track_spectral`.

Fig. 1 follows the Lipschitz bound prod_i rho_i ||A_i||_sigma across training epochs (it grows,
far more for random labels) and the same divided by the margin (the growth disappears). The
loop calls `check_trackable` once before training (a network the measures do not support is a
UsageError before any time is spent) and `spectral_record` after every epoch.
"""
from __future__ import annotations

import torch

from rethinkbench.measures import margins as M
from rethinkbench.measures import norms as N

FIELDS = ("lipschitz", "spectral_complexity", "margin_p5", "margin_median")


def check_trackable(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Raise the measures' UsageError if `model` is not a chain they support."""
    N.chain(model, x)


def spectral_record(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The history fields of one epoch: Lipschitz bound, R_A (reference 0), and the 5th-percentile
    and median margins on the training set (x, y), labels as trained."""
    m = M.margins(model, x, y)
    return {**N.spectral_summary(model, x), "margin_p5": M.margin_percentile(m, M.NEYSHABUR_PERCENTILE), "margin_median": M.margin_percentile(m, 50.0)}

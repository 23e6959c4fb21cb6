"""The explicit regularizers of Arpit et al. (2017, §5, Fig. 10/11), applied around any model.

Dropout on hidden units is a layer of the paper's models (models.py). The others are applied by the
training loop, so they work on every model without changing its architecture or its state dict:

* input dropout and input Gaussian noise perturb each training batch (standardized pixel units);
* hidden Gaussian noise is added to the output of every nn.ReLU module in training mode (a forward
  hook; eval-mode passes are untouched);
* adversarial training mixes the loss on each batch with the loss on adversarial versions of it,
  (1 - w) CE(x, y) + w CE(x_adv, y), found by the same Langevin search as A-csr (Alg. 1 of Arpit et
  al.): a uniform start in the l-inf ball, then x <- clip(x + a sign(grad) + b N(0, 1)), ascending the
  cross-entropy of the true label.

Every random draw comes from a per-purpose generator of the run seed (seeding.py), except hidden
noise, which uses the run's forked global RNG as dropout does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rethinkbench.base.errors import UsageError

# The adversarial search: l-inf radius in standardized pixel units (one image has std 1), and
# the steps of the Langevin search with the step/noise ratios of critical_sample_ratio.
ADV_RADIUS = 0.3
ADV_STEPS = 3
ADV_ALPHA, ADV_BETA = 0.25, 0.2

# The RunConfig fields of this module, with the value that switches each off.
FIELDS = {"input_dropout": 0.0, "input_noise": 0.0, "hidden_noise": 0.0, "adversarial": 0.0}


def uses_loop_regularizers(cfg) -> bool:
    """True when the training loop must apply something of this module to run `cfg`."""
    return any(getattr(cfg, name) != off for name, off in FIELDS.items())


def perturb_inputs(xb: torch.Tensor, cfg, gen: torch.Generator | None) -> torch.Tensor:
    """Input dropout (each pixel zeroed with probability p, the rest scaled by 1/(1-p)), then additive
    Gaussian noise of std `cfg.input_noise`. Returns xb itself when both are off."""
    if cfg.input_dropout:
        keep = torch.rand(xb.shape, generator=gen, device=xb.device) >= cfg.input_dropout
        xb = xb * keep / (1.0 - cfg.input_dropout)
    if cfg.input_noise:
        xb = xb + cfg.input_noise * torch.randn(xb.shape, generator=gen, device=xb.device)
    return xb


def add_hidden_noise(model: nn.Module, std: float) -> list:
    """Add N(0, std^2) to the output of every nn.ReLU of `model` in training mode; returns the hook
    handles. A model without nn.ReLU modules (functional relu only) is refused: the noise would
    silently go nowhere."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise UsageError(f"hidden_noise needs nn.ReLU modules to attach to; "
                         f"{type(model).__name__} has none (does it call F.relu?)")

    def hook(module, inputs, output):
        if module.training:
            return output + std * torch.randn_like(output)
        return None

    return [m.register_forward_hook(hook) for m in relus]


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         gen: torch.Generator, radius: float = ADV_RADIUS, steps: int = ADV_STEPS) -> torch.Tensor:
    """Langevin adversarial search around x (Arpit et al., Alg. 1), ascending CE of the labels y.
    The model stays in its mode (training: dropout active, as in training on them); parameter
    gradients are not touched. Returns a detached batch."""
    lo, hi = x - radius, x + radius
    xt = x + (torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1) * radius
    for _ in range(steps):
        xt = xt.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xt), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xt)
        step = ADV_ALPHA * radius * grad.sign() + ADV_BETA * radius * torch.randn(
            x.shape, generator=gen, device=x.device)
        xt = torch.max(torch.min(xt.detach() + step, hi), lo)
    return xt.detach()

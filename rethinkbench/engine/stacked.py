"""StackedModel: K copies of one network held as stacked tensors (leading dim K), run by
`torch.func.vmap` over `functional_call`, one backward through the stacked parameters and one
fused `torch.optim.SGD` update for all of them. The cohort loop (cohort.py) trains it; the plan
(plan.py) times its step. Why members may differ from their solo runs: cohort.py's docstring.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["StackedModel", "has_batchnorm"]


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))
               for m in model.modules())


# ----------------------------------------------------------------------------- the stacked step

class StackedModel:
    """K copies of one architecture as stacked tensors, and the SGD step that trains them.

    `self(xb, yb, lr)` is the whole step: xb (K,B,...), yb (K,B) on the device, lr a float or a
    0-d tensor (the members' common lr: it is in the cohort key). It does forward, backward and
    the update in place on persistent tensors (params, momentum buffers, BatchNorm buffers) and
    returns on-device (loss (K,), correct (K,)): no host sync and no Python branch on tensor
    values, so it can be captured in a CUDA graph. The update is `torch.optim.SGD` itself, fused
    (one multi-tensor kernel for all parameters, as a solo run's optimizer; the written-out update
    launched about four kernels per parameter), its lr a device tensor.
    """

    def __init__(self, models, momentum: float, weight_decay: float, autocast=contextlib.nullcontext):
        params, buffers = stack_module_state(models)  # copies: the models keep their own tensors
        self.params = {n: p.detach().requires_grad_() for n, p in params.items()}
        self.buffers = buffers
        self.lr = torch.zeros((), device=next(iter(self.params.values())).device)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.opt = self._sgd()
        # The module only supplies the code; functional_call swaps in each member's tensors.
        self.base = copy.deepcopy(models[0]).to("meta").train()
        self.autocast = autocast
        # randomness="different": each member draws its own dropout mask (none without dropout).
        # The vmapped function closes over the module, not over self: a bound method here made a
        # reference cycle (self -> vmap -> self) that kept the stacked parameters on the GPU
        # until the garbage collector ran.
        base = self.base
        self._forward = vmap(lambda params, buffers, x: functional_call(base, (params, buffers), (x,)),
                             randomness="different")

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def _sgd(self) -> torch.optim.Optimizer:
        # dampening 0, no Nesterov: what every solo run uses (engine/loop.py, make_optimizer).
        return torch.optim.SGD(list(self.params.values()), lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay, fused=True)

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr):
        k, b = yb.shape
        with self.autocast():
            # BatchNorm in train mode updates the stacked running stats in place, per member.
            out = self._forward(self.params, self.buffers, xb)  # (K, B, classes)
            losses = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(k, b).float().mean(1)
        # Members share no parameters, so the gradient of the sum is each member's own gradient.
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        for p, g in zip(self.params.values(), grads):
            # The fused kernel walks param and grad memory in step: a gradient vmap returned with
            # other strides (seen on CPU for the stacked Linear weights) was applied to the wrong
            # elements, silently. Laid out as its parameter first.
            p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)
        if isinstance(lr, torch.Tensor):
            self.lr.copy_(lr)
        else:
            self.lr.fill_(lr)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        correct = (out.detach().argmax(-1) == yb).sum(1)
        return losses.detach(), correct

    def keep(self, rows: list[int]) -> None:
        """Drop the members not in `rows` (positions along dim 0), in place of the stacked state."""
        idx = torch.tensor(rows, device=next(iter(self.params.values())).device)
        pick = lambda t: t.index_select(0, idx)
        momentum = {n: self.opt.state[p].get("momentum_buffer") for n, p in self.params.items()}
        self.params = {n: pick(p.detach()).requires_grad_() for n, p in self.params.items()}
        self.buffers = {n: pick(b) for n, b in self.buffers.items()}
        self.opt = self._sgd()   # on the kept rows, with their momentum
        for n, p in self.params.items():
            if momentum[n] is not None:
                self.opt.state[p]["momentum_buffer"] = pick(momentum[n])

    @torch.no_grad()
    def load_into(self, k: int, model: torch.nn.Module) -> torch.nn.Module:
        """Copy member k's parameters and buffers into `model` (a solo module of the same shape)."""
        for name, p in model.named_parameters():
            p.copy_(self.params[name][k])
        for name, b in model.named_buffers():
            b.copy_(self.buffers[name][k])
        return model


# ----------------------------------------------------------------------------- data

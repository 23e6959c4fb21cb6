"""A training step captured once in a CUDA graph and replayed: the cure for a launch-bound loop.

At batch 128 the paper's models are launch-bound on a modern GPU: an eager mlp1x512 step spent
1.19 ms on the host for 0.20 ms of kernels, small Inception 15.9 ms for 7.0 ms (H100, issue 9). A
CUDA graph records the step's few hundred kernels once and replays them with one launch.

`GraphedStep` owns what a replayed graph needs to stay valid: static input buffers (the batch is
copied into them; the gather itself stays outside so the random crop keeps its own generator), the
learning rate as a device tensor (the lr schedule changes it in place, no re-capture), and on-device
running sums of the loss and of correct predictions (read once an epoch). The optimizer must take
its lr from that tensor: `make_graph_optimizer`.

Capture follows PyTorch's documented whole-network recipe: a few real training steps on a side
stream first (they allocate the momentum buffers and let cuDNN pick its algorithms), gradients set
to None, then one step recorded under `torch.cuda.graph`. Autocast's weight cache is disabled while
capturing (the documented requirement for autocast inside a graph). A batch of another shape (the
short last batch of an epoch) runs eagerly on the same parameters, gradients and optimizer state.

Warm-up, capture and replay run under `torch.cuda.device(model's device)`: the side stream, the
capture stream and the graph's memory pool belong to the current device, which is cuda:0 in every
process unless set, while an xdist worker trains on cuda:N (pytorch/pytorch#87794).

A step that cannot be captured (a plugin model that syncs with the host in `forward`, e.g. an
`.item()`, passes the CPU checks and fails only here) is not an error: the capture is dropped,
a warning names the model, and the run goes on eagerly, which gives the same numbers, only slower.

On CPU there is nothing to capture: `train()` does not use this class there, so CPU numbers are the
plain loop's. `capture=False` runs the same static-buffer path eagerly (how the tests check its
bookkeeping on a machine without CUDA).
"""
from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F

WARMUP_STEPS = 3   # PyTorch's recipe warms up on a side stream before capture; 3 is its example's


def make_graph_optimizer(model, cfg, device) -> tuple[torch.optim.Optimizer, torch.Tensor]:
    """SGD (fused, momentum, weight decay) whose lr is a device tensor that a graph reads at replay;
    Adam (fused, capturable: its step count lives on the device too) for cfg.optimizer == "adam"."""
    lr = torch.tensor(cfg.effective_lr, dtype=torch.float32, device=device)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay, fused=True,
                                capturable=lr.device.type == "cuda"), lr
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, fused=True)
    return opt, lr


class GraphedStep:
    """step(xb, yb, lr): one SGD step of `model` on the batch, captured after WARMUP_STEPS calls."""

    def __init__(self, model, opt: torch.optim.Optimizer, lr: torch.Tensor, autocast_dtype=None,
                 capture: bool | None = None, name: str | None = None):
        self.model, self.opt, self.lr = model, opt, lr
        self.name = name or type(model).__name__   # for the warning when capture fails
        self.device = lr.device
        self.capture = (self.device.type == "cuda") if capture is None else capture
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"CUDA graph capture needs a CUDA device, got {self.device}")
        self.autocast_dtype = autocast_dtype
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.static_x = self.static_y = None
        self.graph = None
        self.calls = 0      # steps taken through this object
        self.warmed = 0     # full-size eager steps before capture
        self.replays = 0

    # -------------------------------------------------------------- the step itself
    def _autocast(self, cache: bool):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=cache)

    def _forward_backward_update(self, x, y, cache: bool = True):
        with self._autocast(cache):
            out = self.model(x)
            loss = F.cross_entropy(out, y)
        loss.backward()
        self.opt.step()
        # In place, so that a replayed graph accumulates into the same two tensors.
        self.loss_sum.add_(loss.detach().float() * y.shape[0])
        self.correct.add_((out.argmax(1) == y).sum())

    # -------------------------------------------------------------- public
    def reset_sums(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> None:
        self.lr.fill_(lr)
        self.calls += 1
        if self.static_x is None:
            self.static_x, self.static_y = torch.empty_like(xb), torch.empty_like(yb)
        if xb.shape != self.static_x.shape:     # the short last batch: eager, same state
            self._eager(xb, yb)
            return
        self.static_x.copy_(xb)
        self.static_y.copy_(yb)
        if self.capture and self.graph is None and self.warmed < WARMUP_STEPS:
            self._warmup_step()
            self.warmed += 1
            return
        if self.capture and self.graph is None:
            self._record()   # on failure: capture off, this step and the rest eager
        if self.graph is not None:
            with self._on_device():
                self.graph.replay()
            self.replays += 1
        else:
            self._eager(self.static_x, self.static_y)

    def _on_device(self):
        """The model's CUDA device as the current one (streams, capture, pool); nothing on CPU."""
        return torch.cuda.device(self.device) if self.capture else contextlib.nullcontext()

    def _eager(self, x, y) -> None:
        # Zero in place (not set_to_none): after capture the graph owns these gradient tensors.
        self.opt.zero_grad(set_to_none=self.graph is None)
        self._forward_backward_update(x, y)

    def _warmup_step(self) -> None:
        with self._on_device():
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self.opt.zero_grad(set_to_none=True)
                self._forward_backward_update(self.static_x, self.static_y)
            torch.cuda.current_stream(self.device).wait_stream(side)

    def _record(self) -> None:
        # Recording does not run the kernels: the caller replays right after. Nothing the step
        # changes (parameters, momentum, the sums) is written while capturing, so a failed
        # capture leaves the state as the last eager step left it.
        self.opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with self._on_device(), torch.cuda.graph(graph):
                self._forward_backward_update(self.static_x, self.static_y, cache=False)
        except torch.OutOfMemoryError:
            raise   # not a capture problem: more memory would not be found eagerly either
        except RuntimeError as exc:   # e.g. "operation not permitted when stream is capturing"
            self.capture = False
            self.opt.zero_grad(set_to_none=True)
            warnings.warn(f"model {self.name!r}: its training step cannot be captured in a CUDA "
                          f"graph ({type(exc).__name__}: {str(exc).splitlines()[0]}); training it "
                          f"eagerly (same numbers, slower). A forward that syncs with the host "
                          f"(.item(), .tolist(), data-dependent shapes) is the usual cause.",
                          RuntimeWarning, stacklevel=3)
            return
        self.graph = graph

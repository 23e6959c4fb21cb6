"""The checks a model plugin's network passes before anything trains: its input shape, and one
eval-mode forward pass whose output must be (N, num_classes) and finite."""
from __future__ import annotations

import torch

from rethinkbench.base.errors import UsageError

CHECK_EXAMPLES = 2          # inputs of the forward-pass check


def check_in_shape(plugin, in_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in in_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"in_shape must be (C, H, W), got {in_shape!r}")
    return shape


def check_forward(plugin, net, in_shape, num_classes: int, examples) -> None:
    """One eval-mode forward pass on CHECK_EXAMPLES inputs (the dataset's own when given, else
    fixed random ones that touch no global RNG): the output must be (N, num_classes) and finite."""
    if examples is None:
        gen = torch.Generator().manual_seed(0)
        examples = torch.randn((CHECK_EXAMPLES, *in_shape), generator=gen)
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(examples.to(device))
    except Exception as exc:
        raise UsageError(f"model plugin {plugin.name!r}: the forward pass failed on "
                         f"{examples.shape[0]} inputs of shape {tuple(in_shape)}: "
                         f"{type(exc).__name__}: {exc}") from exc
    finally:
        net.train(was_training)
    n = examples.shape[0]
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"model plugin {plugin.name!r}: the forward pass returned a "
                         f"{type(out).__name__}, not a tensor of logits ({n}, {num_classes})")
    if tuple(out.shape) != (n, num_classes):
        raise UsageError(f"model plugin {plugin.name!r}: output shape {tuple(out.shape)} for {n} "
                         f"inputs of shape {tuple(in_shape)}; expected ({n}, {num_classes}), one "
                         f"logit per class (num_classes={num_classes})")
    if not bool(torch.isfinite(out).all()):
        raise UsageError(f"model plugin {plugin.name!r}: the forward pass gave non-finite outputs "
                         f"(NaN or inf) on {n} inputs of shape {tuple(in_shape)}")

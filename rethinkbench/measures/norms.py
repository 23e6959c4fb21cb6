"""Norm-based measures of a trained network: per-layer norms, Bartlett et al.'s spectral
complexity and Neyshabur et al.'s norm and path-norm measures.

What is supported, and why:
- Per-layer norms (`layer_norms`) are defined for every nn.Linear and nn.Conv2d of any model (the
  built-in MLPs, small AlexNet, small Inception, a plugin): spectral norm (Linear: the matrix
  2-norm; Conv2d: the operator norm of the convolution on the layer's actual input shape, by power
  iteration on conv / conv-transpose, not the norm of the reshaped kernel), Frobenius norm and the
  (2,1) norm ||W^T||_{2,1} = sum of the l2 norms of W's rows (output units; for a conv, of each
  output channel's kernel, i.e. per kernel, not per operator row). Biases are left out, as both
  papers' bounds are stated for networks without them. Any other module type that holds
  parameters of its own (BatchNorm with affine weights, embeddings, ...) is a UsageError naming it.
- Products over layers (Lipschitz constant, spectral complexity R_A, path norms) need the network
  to be a *chain*: every leaf module takes the previous leaf's output (checked with forward hooks
  on one example, so a branch, a concatenation or a functional op between modules is detected).
  Chain members: Linear, Conv2d, ReLU (Lipschitz 1), Flatten, Dropout and Identity (identities in
  eval mode), MaxPool2d (Lipschitz sqrt(ceil(kh/sh) ceil(kw/sw)) in l2: each input lies in at
  most that many windows; path norms refuse it). So the MLPs are supported; small AlexNet is not
  (its local response normalization has no simple Lipschitz constant) and small Inception is not
  (branches, BatchNorm); they raise a UsageError naming the module type, which a claim turns into
  a skip with that reason.
- Neyshabur et al.'s measures carry the constants of their definitions as we read them (§2 of the
  paper; the 4's, 2's and unit counts h_i are recalled, not re-read): l2 = prod_i 4 ||W_i||_F^2,
  l1-path = (sum over paths prod_i |2 W_i|)^2, l2-path = sum over paths prod_i 4 h_i W_i^2,
  spectral = prod_i h_i ||W_i||_2^2, each over gamma^2, with h_i the number of units layer i
  outputs. Constants cancel in any comparison between two networks of one architecture.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rethinkbench.base.errors import UsageError

WEIGHTED = (nn.Linear, nn.Conv2d)
IDENTITY = (nn.Flatten, nn.Dropout, nn.Identity)
CHAIN_TYPES = WEIGHTED + IDENTITY + (nn.ReLU, nn.MaxPool2d)
PATH_TYPES = WEIGHTED + IDENTITY + (nn.ReLU,)
POWER_ITERS = 500          # conv power iteration: at most this many steps ...
POWER_RTOL = 1e-10         # ... stopping once sigma changes by less than this (relative)


@dataclass
class LayerCall:
    name: str
    module: nn.Module
    in_shape: tuple      # one example's input shape (no batch dimension)
    out_units: int       # elements of one example's output


def _example(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise UsageError(f"an example batch (N, ...) with N >= 1 is needed, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    return x[:1]


def _own_parameters(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False))


def _trace(model: nn.Module, x: torch.Tensor):
    """Run `model` on one example with a forward hook on every leaf module; returns the calls in
    order as (name, module, input tensor, output tensor) and the model's input and output."""
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    calls = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: calls.append((n, mod, inp[0], out)))
             for n, m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            xin = _example(x).to(next(model.parameters()).device)
            out = model(xin)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return calls, xin, out


def _check_params(model: nn.Module) -> None:
    for name, m in model.named_modules():
        if _own_parameters(m) and not isinstance(m, WEIGHTED):
            raise UsageError(f"norm measures support parameters in nn.Linear and nn.Conv2d only; "
                             f"{type(model).__name__}.{name} is a {type(m).__name__} with parameters")


def weight_layers(model: nn.Module, x: torch.Tensor) -> list[LayerCall]:
    """Every Linear and Conv2d of `model` in call order, with the input shape it saw on one example
    of `x`. A layer called more than once (weight sharing) or never is a UsageError."""
    _check_params(model)
    calls, _, _ = _trace(model, x)
    seen = {}
    for name, m, inp, out in calls:
        if isinstance(m, WEIGHTED):
            if name in seen:
                raise UsageError(f"{type(model).__name__}.{name} ({type(m).__name__}) is called more "
                                 f"than once per forward pass: weight sharing is not supported")
            seen[name] = LayerCall(name, m, tuple(inp.shape[1:]), out[0].numel())
    missing = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED) and n not in seen]
    if missing:
        raise UsageError(f"{type(model).__name__}: layers {missing} are not called in a forward pass")
    if not seen:
        raise UsageError(f"{type(model).__name__} has no nn.Linear or nn.Conv2d layer to measure")
    return list(seen.values())


def chain(model: nn.Module, x: torch.Tensor, allowed=CHAIN_TYPES) -> list[LayerCall]:
    """The leaf modules of `model` as a chain (each takes the previous one's output), or a
    UsageError naming the module type or the break."""
    _check_params(model)
    calls, xin, out = _trace(model, x)
    what = type(model).__name__
    prev = xin
    for name, m, inp, o in calls:
        if not isinstance(m, allowed):
            raise UsageError(f"{what}.{name} is a {type(m).__name__}: a product over layers supports "
                             f"chains of {', '.join(t.__name__ for t in allowed)} only")
        if inp is not prev:
            raise UsageError(f"{what} is not a chain of modules: {name} ({type(m).__name__}) does not "
                             f"take the previous module's output (a branch or a functional op between modules)")
        prev = o
    if prev is not out:
        raise UsageError(f"{what} is not a chain of modules: its output is not its last module's output")
    if len({id(m) for _, m, _, _ in calls}) != len(calls):
        raise UsageError(f"{what} calls a module more than once per forward pass: not supported")
    return [LayerCall(n, m, tuple(i.shape[1:]), o[0].numel()) for n, m, i, o in calls]


# ----------------------------------------------------------------------------- single layers

def conv_operator_norm(conv: nn.Conv2d, in_shape, iters: int = POWER_ITERS, rtol: float = POWER_RTOL,
                       seed: int = 0) -> float:
    """Spectral norm of the linear map x -> conv(x) (bias left out) on inputs of shape `in_shape`
    (C, H, W): power iteration on A^T A, A^T applied by autograd, in float64."""
    w = conv.weight.detach().double()
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn((1, *in_shape), generator=g, dtype=torch.float64).to(w.device)
    op = lambda t: F.conv2d(t, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    sigma = 0.0
    for _ in range(iters):
        v = v / torch.linalg.vector_norm(v)
        v.requires_grad_(True)
        u = op(v)
        (ata,) = torch.autograd.grad(u, v, grad_outputs=u)    # A^T A v
        new = float(torch.linalg.vector_norm(u.detach()))               # ||A v|| with ||v|| = 1
        v = ata.detach()
        if abs(new - sigma) <= rtol * max(new, 1e-300):
            sigma = new
            break
        sigma = new
    return sigma


def spectral_norm(layer: LayerCall) -> float:
    m = layer.module
    if isinstance(m, nn.Linear):
        # sqrt of the top eigenvalue of the smaller Gram matrix: the same number as the 2-norm (to
        # ~1e-14 relative), 3-4x faster than an SVD, which matters once an epoch (tracking.py).
        w = m.weight.detach().double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        return float(torch.linalg.eigvalsh(gram)[-1].clamp_min(0).sqrt())
    return conv_operator_norm(m, layer.in_shape)


def _rows(w: torch.Tensor) -> torch.Tensor:
    return w.detach().double().reshape(w.shape[0], -1)


def two_one_norm(w: torch.Tensor) -> float:
    """||W^T||_{2,1}: the sum over output units of the l2 norm of their incoming weights."""
    return float(torch.linalg.vector_norm(_rows(w), dim=1).sum())


def layer_norms(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """Per-layer norms of every Linear / Conv2d (see the module docstring)."""
    out = []
    for L in weight_layers(model, x):
        w = L.module.weight
        out.append({"name": L.name, "type": type(L.module).__name__, "out_units": L.out_units,
                    "spectral": spectral_norm(L),
                    "frobenius": float(torch.linalg.vector_norm(w.detach().double())),
                    "two_one": two_one_norm(w)})
    return out


# ----------------------------------------------------------------------------- products

def _rho(m: nn.Module) -> float:
    if isinstance(m, nn.MaxPool2d):
        k, s = (_pair(m.kernel_size), _pair(m.stride or m.kernel_size))
        if _pair(m.dilation) != (1, 1):
            raise UsageError(f"MaxPool2d with dilation {m.dilation} is not supported")
        return math.sqrt(math.ceil(k[0] / s[0]) * math.ceil(k[1] / s[1]))
    return 1.0


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def lipschitz(model: nn.Module, x: torch.Tensor) -> float:
    """prod_i rho_i ||A_i||_sigma over the chain: an upper bound on the network's l2 Lipschitz
    constant (biases do not change it)."""
    return spectral_summary(model, x)["lipschitz"]


def spectral_complexity(model: nn.Module, x: torch.Tensor, reference: nn.Module | None = None) -> float:
    """Bartlett et al.'s R_A = (prod_i rho_i ||A_i||_s) (sum_i ||A_i^T - M_i^T||_{2,1}^{2/3} /
    ||A_i||_s^{2/3})^{3/2}, with M_i = 0 (`reference` None) or the weights of `reference`, a
    network of the same architecture (the initialization), matched by module name."""
    return spectral_summary(model, x, reference)["spectral_complexity"]


def spectral_summary(model: nn.Module, x: torch.Tensor, reference: nn.Module | None = None) -> dict:
    """{"lipschitz", "spectral_complexity"} from one pass over the chain (each spectral norm once)."""
    calls = chain(model, x)
    ref = dict(reference.named_modules()) if reference is not None else None
    lip, total = 1.0, 0.0
    for c in calls:
        if not isinstance(c.module, WEIGHTED):
            lip *= _rho(c.module)
            continue
        s = spectral_norm(c)
        w = c.module.weight.detach()
        if ref is not None:
            r = ref.get(c.name)
            if type(r) is not type(c.module) or r.weight.shape != w.shape:
                raise UsageError(f"reference network has no {type(c.module).__name__} {c.name!r} of weight "
                                 f"shape {tuple(w.shape)}: it must have the same architecture")
            w = w.double() - r.weight.detach().double().to(w.device)
        lip *= s
        total += two_one_norm(w) ** (2 / 3) / s ** (2 / 3)
    return {"lipschitz": lip, "spectral_complexity": lip * total ** 1.5}


def path_sum(model: nn.Module, x: torch.Tensor, p: float) -> float:
    """sum over input-output paths of prod_i |w_i|^p: one forward pass of the network with every
    weight replaced by |w|^p and biases by 0 on an all-ones input (ReLU is then the identity)."""
    if not p > 0:
        raise UsageError(f"path norm exponent p must be positive, got {p!r}")
    chain(model, x, allowed=PATH_TYPES)
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, WEIGHTED):
                m.weight.abs_().pow_(p)
                if m.bias is not None:
                    m.bias.zero_()
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=next(net.parameters()).device)
        return float(net(ones).sum())


def neyshabur_measures(model: nn.Module, x: torch.Tensor, gamma: float) -> dict:
    """Neyshabur et al.'s l2, l1-path, l2-path and spectral measures over the margin gamma
    (module docstring). `gamma` must be positive: a network that does not fit its training set
    has no positive 5th-percentile margin, and the measures are then undefined."""
    if not gamma > 0:
        raise UsageError(f"the margin gamma must be positive (a network that fits its data), got {gamma!r}")
    layers = [c for c in chain(model, x, allowed=PATH_TYPES) if isinstance(c.module, WEIGHTED)]
    d = len(layers)
    g2 = gamma ** 2
    fro2 = [float(torch.linalg.vector_norm(c.module.weight.detach().double())) ** 2 for c in layers]
    h = [c.out_units for c in layers]
    return {
        "l2": math.prod(4 * f for f in fro2) / g2,
        "l1_path": (2 ** d * path_sum(model, x, 1)) ** 2 / g2,
        "l2_path": math.prod(4 * hi for hi in h) * path_sum(model, x, 2) / g2,
        "spectral": math.prod(hi * spectral_norm(c) ** 2 for hi, c in zip(h, layers)) / g2,
    }

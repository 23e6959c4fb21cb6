"""Zhang et al. 2017, §4: finite-sample expressivity, built rather than argued.

Theorem 1: a two-layer ReLU network with 2n + d weights can represent any function on n distinct
points in R^d. The construction (the paper's proof, §4 and Appendix C):

    c(x) = sum_j w_j * max(<a, x> - b_j, 0)

Pick a direction a so that the projections z_i = <a, x_i> are distinct and sort them; pick kinks
b_1 < z_1 < b_2 < z_2 < ... < b_n < z_n. Then A_ij = max(z_i - b_j, 0) is lower triangular with the
positive diagonal z_i - b_i (so its eigenvalues, the smallest included, are those gaps), and
w = A^-1 y interpolates. `fit_any_labeling` returns that network as a module whose parameters are
exactly a (d), b (n) and w (n): 2n + d numbers. A target with k columns (one-hot labels) needs one w
per column and shares a and b: d + n + n*k weights (2n + d when k = 1).

Round-off (float64 throughout). With n = 4,000 the smallest gap between sorted projections is
~ range/n^2, so the slopes of c are ~ n^2/range and w, their differences, is large. Three choices
keep the error small:
  * a is the best of `directions` random unit directions, scored by min gap / range;
  * b_i sits a fraction `kink` of the way back from z_i towards z_{i-1} (kink = 1/2 is midway).
    Forward substitution on A is the recurrence s_i = (y_i - y_{i-1} - s_{i-1}(b_i - z_{i-1}))
    / (z_i - b_i) for the slope s_i = w_1 + ... + w_i, which carries an error in s_{i-1} into s_i
    with the factor (1 - kink)/kink: -1 at midway (errors and slopes pile up along the whole sort
    order), 1/9 at the default kink = 0.9 (they die out within a few points). The zero pattern of A
    needs z_{i-1} < b_i, which kink < 1 keeps with a margin of (1 - kink) * gap;
  * w solves the triangular system by forward substitution (torch.linalg.solve_triangular).
The achieved error and a 1-norm condition estimate of A are in `net.fit_info`.

Depth (§4, Appendix C: depth k, width O(n/k)): `deepen` rebuilds the same function as an MLP with
k - 1 hidden layers of width <= ceil(n/(k-2)) + 1 + 2*outputs, see its docstring.

The linear-model results of §5 live in `rethinkbench.theory.linear` and are re-exported here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rethinkbench.base.errors import UsageError
from rethinkbench.theory.linalg import cond1_triangular

_EVAL_ELEMENTS = 2**24   # hidden activations per chunk in forward (128 MiB of float64)


@dataclass(frozen=True)
class Theorem1Info:
    """What the construction reached on its own training points."""
    n: int                   # distinct points fitted
    d: int                   # input dimension
    k: int                   # target columns (1 for a scalar target)
    num_weights: int         # d + n + n*k (= 2n + d for k = 1)
    min_gap: float           # smallest gap between consecutive sorted projections
    relative_min_gap: float  # min_gap / (range of the projections): what the choice of a maximizes
    min_eigenvalue: float    # smallest diagonal entry of A = its smallest eigenvalue (A triangular)
    cond1: float             # 1-norm condition estimate of A (Higham-Tisseur, 2 columns)
    max_abs_error: float     # max_i |net(x_i) - y_i|
    relative_error: float    # max_abs_error / max |y|
    directions: int          # random directions tried for a
    kink: float


class Theorem1Net(nn.Module):
    """c(x) = relu(<a, x> - b) @ w. Parameters: a (d,), b (n,), w (n,) or (n, k); nothing else."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, in_shape: tuple[int, ...]):
        super().__init__()
        self.a = nn.Parameter(a, requires_grad=False)
        self.b = nn.Parameter(b, requires_grad=False)
        self.w = nn.Parameter(w, requires_grad=False)
        self.in_shape = tuple(in_shape)
        self.fit_info: Theorem1Info | None = None

    def projections(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).to(self.a) @ self.a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.projections(x)
        rows = max(1, _EVAL_ELEMENTS // max(1, self.b.numel()))
        out = [torch.relu(zc[:, None] - self.b[None, :]) @ self.w for zc in z.split(rows)]
        return torch.cat(out) if out else z.new_zeros((0, *self.w.shape[1:]))


def fit_any_labeling(x, y, *, generator: torch.Generator | None = None, directions: int = 16,
                     kink: float = 0.9) -> Theorem1Net:
    """Theorem 1: a two-layer ReLU network with d + n + n*k weights such that net(x_i) = y_i.

    x: (n, d) or (n, *shape) points; y: (n,) real targets or (n, k) (e.g. one-hot labels). Both are
    taken in float64 on x's device. Duplicate points with equal targets are fitted once (n counts
    distinct points); duplicates with different targets are a ValueError naming their indices.
    `generator` draws the random directions (default: a fixed seed, so the result is deterministic).
    """
    xf, yf = _check_inputs(x, y)
    if not (isinstance(directions, int) and directions >= 1):
        raise UsageError(f"directions must be a positive integer, got {directions!r}")
    if not (isinstance(kink, (int, float)) and 0 < kink < 1):
        raise UsageError(f"kink must be in (0, 1) (the place of b_i between z_(i-1) and z_i), "
                         f"got {kink!r}")
    in_shape = tuple(torch.as_tensor(x).shape[1:])
    keep = _distinct_or_raise(xf, yf)
    xu, yu = xf[keep], yf[keep]
    n, d = xu.shape
    a, order, z = _best_direction(xu, directions, generator)
    yz = yu[order]
    gaps = z[1:] - z[:-1]
    first_gap = (z[-1] - z[0]) / (n - 1) if n > 1 else z.abs().clamp(min=1.0)[0]
    b = z - kink * torch.cat([first_gap.reshape(1), gaps])
    # The zero pattern must hold exactly in floating point: b_i < z_i and z_(i-1) < b_i.
    if not (bool((z > b).all()) and bool((z[:-1] < b[1:]).all())):
        raise UsageError("the projections of some distinct points are too close to separate in "
                         "float64 (consecutive sorted projections within a few ulps); rescale x")
    A = torch.relu(z[:, None] - b[None, :])   # lower triangular: z_i < b_j for j > i
    targets = yz if yz.ndim == 2 else yz[:, None]
    w = torch.linalg.solve_triangular(A, targets, upper=False)
    w = w if yz.ndim == 2 else w[:, 0]
    net = Theorem1Net(a, b, w, in_shape)
    cond = cond1_triangular(A)
    del A
    with torch.no_grad():
        err = float((net(xf) - yf).abs().max())
    scale = float(yf.abs().max())
    k = 1 if yf.ndim == 1 else yf.shape[1]
    min_gap = float(gaps.min()) if n > 1 else float(first_gap)
    net.fit_info = Theorem1Info(
        n=n, d=d, k=k, num_weights=sum(p.numel() for p in net.parameters()), min_gap=min_gap,
        relative_min_gap=min_gap / float(z[-1] - z[0]) if n > 1 else 1.0,
        min_eigenvalue=float((z - b).min()), cond1=cond, max_abs_error=err,
        relative_error=err / scale if scale > 0 else err, directions=directions, kink=float(kink))
    return net


def theorem1_matrix(net: Theorem1Net, x) -> torch.Tensor:
    """A_ij = max(z_i - b_j, 0) for the points x (sorted by projection) and the net's kinks b."""
    z, _ = torch.sort(net.projections(torch.as_tensor(x)))
    return torch.relu(z[:, None] - net.b[None, :])


def deepen(net: Theorem1Net, depth: int) -> nn.Sequential:
    """The same function c(x) as an MLP of `depth` linear layers (depth - 1 hidden ReLU layers),
    depth >= 3, each hidden layer of width <= ceil(n / (depth - 2)) + 1 + 2k and with O(k n / depth)
    nonzero parameters (the first: d + 1): depth k, width O(n/k) (§4, Appendix C).

    Our construction, built from the two-layer one rather than transcribed from the paper's
    appendix. Hidden layer 1 computes only t = relu(<a,x> - b_1): the projection, shifted past the
    first kink (t = <a,x> - b_1 wherever any unit is active). The n units relu(<a,x> - b_j) =
    relu(t - (b_j - b_1)) are split into depth - 2 contiguous blocks in kink order, one per later
    hidden layer. Beside its block, each such layer carries t (one unit) and the partial sum P of
    w_j * unit_j over the blocks done so far, as relu(P) and relu(-P) (2k units: relu(P) - relu(-P)
    = P). The output layer adds the last block to relu(P) - relu(-P). In exact arithmetic this is
    c(x) for every x, not only on the data; in float64 it is the same sum in another order.
    (depth = 2 is the two-layer net itself, `net`.)
    """
    if not isinstance(net, Theorem1Net):
        raise UsageError(f"deepen needs a Theorem1Net from fit_any_labeling, got {type(net).__name__}")
    if not (isinstance(depth, int) and depth >= 3):
        raise UsageError(f"depth must be an integer >= 3 (linear layers; depth 2 is the two-layer "
                         f"net from fit_any_labeling itself), got {depth!r}")
    a, b = net.a.detach(), net.b.detach()
    w = net.w.detach() if net.w.ndim == 2 else net.w.detach()[:, None]
    n, k = w.shape
    opts = dict(dtype=b.dtype, device=b.device)
    blocks = torch.arange(n, device=b.device).tensor_split(depth - 2)
    first = nn.Linear(a.numel(), 1, **opts)
    with torch.no_grad():
        first.weight[0] = a
        first.bias[0] = -b[0]
    layers: list[nn.Module] = [nn.Flatten(), first, nn.ReLU()]
    prev = None   # input layout: [t] after layer 1, then [t, P+ (k), P- (k), units of prev block]
    for block in blocks:
        fan_in = 1 if prev is None else 1 + 2 * k + len(prev)
        lin = nn.Linear(fan_in, 1 + 2 * k + len(block), **opts)
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.zero_()
            lin.weight[0, 0] = 1.0                                   # t' = t
            if prev is not None:                                     # relu(P), relu(-P)
                partial = _partial_sum_rows(k, w[prev], **opts)
                lin.weight[1:1 + k], lin.weight[1 + k:1 + 2 * k] = partial, -partial
            lin.weight[1 + 2 * k:, 0] = 1.0                          # relu(t - (b_j - b_1))
            lin.bias[1 + 2 * k:] = -(b[block] - b[0])
        layers += [lin, nn.ReLU()]
        prev = block
    out = nn.Linear(1 + 2 * k + len(prev), k, **opts)
    with torch.no_grad():
        out.bias.zero_()
        out.weight.copy_(_partial_sum_rows(k, w[prev], **opts))
    layers.append(out)
    if net.w.ndim == 1:
        layers.append(nn.Flatten(0))
    for p in (q for m in layers for q in m.parameters()):
        p.requires_grad_(False)
    return nn.Sequential(*layers)


def _partial_sum_rows(k, w_block, dtype, device):
    """Rows mapping [t, P+, P-, units] to P + units @ w_block, one row per output column."""
    rows = torch.zeros(k, 1 + 2 * k + w_block.shape[0], dtype=dtype, device=device)
    rows[:, 1:1 + k] = torch.eye(k, dtype=dtype, device=device)
    rows[:, 1 + k:1 + 2 * k] = -torch.eye(k, dtype=dtype, device=device)
    rows[:, 1 + 2 * k:] = w_block.T
    return rows


def layer_stats(model: nn.Sequential) -> list[dict]:
    """Per linear layer: its width (outputs) and its nonzero parameters (weights and biases)."""
    return [{"width": m.out_features,
             "nonzero": int(torch.count_nonzero(m.weight)) + int(torch.count_nonzero(m.bias))}
            for m in model if isinstance(m, nn.Linear)]


def hidden_widths(model: nn.Sequential) -> list[int]:
    return [m.out_features for m in model if isinstance(m, nn.Linear)][:-1]


# ----------------------------------------------------------------------------- helpers

def _check_inputs(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, device=x.device)
    if x.ndim < 2:
        raise UsageError(f"x must be (n, d) or (n, *shape) with one row per point, got shape "
                         f"{tuple(x.shape)}")
    if y.ndim not in (1, 2):
        raise UsageError(f"y must be (n,) targets or (n, k) target vectors, got shape {tuple(y.shape)}")
    if x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        raise UsageError(f"x must hold at least one point of at least one coordinate, got shape "
                         f"{tuple(x.shape)}")
    if y.shape[0] != x.shape[0]:
        raise UsageError(f"x has {x.shape[0]} points but y has {y.shape[0]} targets")
    if y.ndim == 2 and y.shape[1] == 0:
        raise UsageError("y has zero target columns")
    if x.is_complex() or y.is_complex():
        raise UsageError("x and y must be real")
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    yf = y.to(torch.float64)
    for name, t in (("x", xf), ("y", yf)):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            rows = torch.nonzero(bad.reshape(t.shape[0], -1).any(dim=1)).flatten()[:5].tolist()
            raise UsageError(f"{name} has NaN or infinite values (rows {rows}...)")
    return xf, yf


def _distinct_or_raise(xf: torch.Tensor, yf: torch.Tensor) -> torch.Tensor:
    """Indices of the first occurrence of each distinct point; ValueError on conflicting duplicates."""
    _, inverse, counts = torch.unique(xf, dim=0, return_inverse=True, return_counts=True)
    n = xf.shape[0]
    first = torch.full((counts.numel(),), n, dtype=torch.long, device=xf.device)
    first.scatter_reduce_(0, inverse, torch.arange(n, device=xf.device), reduce="amin")
    if bool((counts > 1).any()):
        rep = first[inverse]                        # each point's first copy
        yflat = yf.reshape(n, -1)
        conflict = (yflat != yflat[rep]).any(dim=1)
        if bool(conflict.any()):
            idx = torch.nonzero(conflict).flatten()[:5].tolist()
            pairs = ", ".join(f"x[{int(rep[i])}] == x[{i}]" for i in idx)
            raise UsageError(f"duplicate points with different targets: {pairs}; a function cannot "
                             f"take two values at one point")
    return torch.sort(first).values


def _best_direction(xu: torch.Tensor, directions: int, generator: torch.Generator | None):
    """The unit direction (of `directions` Gaussian draws) whose sorted projections have the largest
    min gap / range; returns (a, sort order, sorted projections)."""
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    n, d = xu.shape
    best = None
    for _ in range(directions):
        a = torch.randn(d, generator=generator, dtype=torch.float64,
                        device=generator.device).to(xu.device)
        a = a / a.norm()
        z, order = torch.sort(xu @ a)
        spread = float(z[-1] - z[0])
        score = float((z[1:] - z[:-1]).min()) / spread if n > 1 and spread > 0 else (1.0 if n == 1 else 0.0)
        if best is None or score > best[0]:
            best = (score, a, order, z)
    if best[0] <= 0:
        raise UsageError(f"no direction among {directions} random ones separates the projections of "
                         f"the distinct points (some are equal in float64); rescale x or raise "
                         f"`directions`")
    return best[1], best[2], best[3]

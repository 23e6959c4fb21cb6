"""Dziugaite & Roy's (2017, arXiv 1703.11008) optimized PAC-Bayes bound for a trained binary
classifier: a stochastic network Q = N(w, diag(s)) around the SGD solution, a prior
P = N(w0, lambda I) centred at the initialization w0, the bound minimized over (w, s, lambda), then
evaluated with the union bound over the discretized lambda and two kl-inverses.

The formulas, as in the paper (§2-§3; logs natural, KL in nats):

- KL(Q || P) = 1/2 sum_i [s_i / lambda + (w_i - w0_i)^2 / lambda - 1 + ln lambda - ln s_i]
  (every weight and bias; k of them).
- lambda = c exp(-j / b), j = 1, 2, ...; the union bound gives prior j the confidence
  delta_j = 6 delta / (pi^2 j^2), so with j = b ln(c / lambda):
  B_RE = (KL + 2 ln(b ln(c / lambda)) + ln(pi^2 m / (6 delta))) / (m - 1)        (their Eq. 5)
  b = 100, c = 0.1, delta = 0.025 (§4.3).
- Objective (their Eq. 4): E_{v~Q} mean_i l(f_v(x_i), y_i) + sqrt(B_RE / 2), with l the logistic
  loss over ln 2 (an upper bound on the 0-1 loss); minimized by RMSprop (decay 0.9) over w,
  rho = ln(s) / 2 and eta = ln(lambda) / 2, from w = the SGD solution. The paper starts at
  s = |w| (§4.3) and lambda = e^-6 (the authors' released code): init="paper". The default start
  (init_uniform: s_i = lambda for every parameter, lambda searched on the grid) is ours, for
  budgets of hundreds of steps rather than the paper's 200,000 (init_uniform says why). lambda is
  kept at most c exp(-1/b) (j >= 1). For a network with two output logits (the suite's
  mlp1x512 built with num_classes = 2) f = logit_y - logit_other, and the surrogate is the
  cross-entropy over ln 2: the same function of f as their single-output logistic loss.
- Final bound (their Eq. 6): lambda rounded to the grid (j = floor or ceil of b ln(c / lambda), the
  smaller bound kept); the posterior's training error e_hat estimated by Monte Carlo and bounded
  by the sample-convergence (Chernoff) bound q = kl^-1(e_hat, ln(2 / delta') / N) at delta' = 0.01;
  then e(Q) <= kl^-1(q, B_RE), with probability >= 1 - delta - delta' over the sample and the
  draws. kl^-1(q, C) = sup {p in [q, 1] : kl(q || p) <= C}, by bisection in float64.

One departure from the paper, for cost, and why it is sound. The paper draws n = 150,000 whole
networks and evaluates each on all m training examples (about two CPU-hours per bound here). We
draw an independent network *for every example*: by the local reparameterization (Kingma,
Salimans & Welling 2015), a Linear layer's output for one input a under independent Gaussian
weights is exactly N(a W^T + b, a^2 s_W^T + s_b), independent across units, so sampling each
layer's pre-activations that way, layer after layer, draws the example's prediction from exactly
the network distribution Q, independently across examples. A pass over the training set is then
m independent Bernoulli draws whose means average to e_hat(Q, S), and Hoeffding's Chernoff bound
(which holds for independent, not necessarily identical, [0, 1] variables) applies with
N = passes * m draws. The same sampling gives an unbiased, lower-variance estimate of the
objective's expected loss during the optimization. It is exact for chains of Linear layers and
elementwise ReLU (plus Flatten, Identity and eval-mode Dropout): convolutions share weights across
positions, so their outputs are not independent per unit, and any other network is a UsageError.

Also reported: sqrt(B_RE / 2), the McAllester-style complexity term. It is what the paper's Table 1
gives for its random-label network (1.352): the kl-inverse bound never exceeds 1, so that term is
the paper's measure of how vacuous a bound is.

Everything is deterministic: batch order and weight noise come from torch.Generators seeded by
`seed`; same seed and device, same numbers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rethinkbench.base.arguments import count, open_unit, positive, probability
from rethinkbench.base.errors import UsageError
from rethinkbench.measures.norms import chain

B_GRID = 100.0          # b: lambda's grid resolution (the paper's §4.3)
C_GRID = 0.1            # c: the largest prior variance on the grid
DELTA = 0.025           # confidence of the PAC-Bayes bound
DELTA_PRIME = 0.01      # confidence of the Monte Carlo (sample-convergence) bound
PRIOR_VARIANCE_INIT = math.exp(-6.0)   # lambda's starting value (the authors' released code)
RMSPROP_DECAY = 0.9
SUPPORTED = (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout)
_KL_BISECTIONS = 200


# ----------------------------------------------------------------------------- scalar pieces

def kl_bernoulli(q: float, p: float) -> float:
    """kl(q || p) = q ln(q/p) + (1-q) ln((1-q)/(1-p)), with 0 ln 0 = 0 (inf where p puts no mass
    on an outcome q has)."""
    q, p = probability("q", q), probability("p", p)
    out = 0.0
    for a, b in ((q, p), (1.0 - q, 1.0 - p)):
        if a > 0.0:
            if b == 0.0:
                return math.inf
            out += a * math.log(a / b)
    return max(out, 0.0)


def kl_inverse(q: float, c: float) -> float:
    """The upper kl-inverse sup {p in [q, 1] : kl(q || p) <= c}, by bisection (to float64
    resolution). c = 0 gives q; q = 0 gives 1 - exp(-c); q = 1 gives 1."""
    q = probability("q", q)
    if isinstance(c, bool) or not isinstance(c, (int, float)) or math.isnan(c) or c < 0:
        raise UsageError(f"the kl budget c must be a number >= 0, got {c!r}")
    if q >= 1.0 or math.isinf(c):
        return 1.0
    lo, hi = q, 1.0
    for _ in range(_KL_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if kl_bernoulli(q, mid) <= c:
            lo = mid
        else:
            hi = mid
    return lo


def gaussian_kl(mean: torch.Tensor, var: torch.Tensor, prior_mean: torch.Tensor, prior_var: float) -> float:
    """KL(N(mean, diag(var)) || N(prior_mean, prior_var I)) in nats, in float64."""
    prior_var = positive("prior_var", prior_var)
    for name, t in (("mean", mean), ("var", var), ("prior_mean", prior_mean)):
        if not isinstance(t, torch.Tensor):
            raise UsageError(f"{name} must be a torch tensor, got {type(t).__name__}")
    if not (mean.shape == var.shape == prior_mean.shape):
        raise UsageError(f"mean, var and prior_mean must have one shape, got {tuple(mean.shape)}, "
                         f"{tuple(var.shape)}, {tuple(prior_mean.shape)}")
    var = var.detach().double()
    if var.numel() and not bool((var > 0).all()):
        raise UsageError("every posterior variance must be > 0")
    d = mean.detach().double() - prior_mean.detach().double().to(mean.device)
    k = var.numel()
    return float(0.5 * ((var.sum() + (d * d).sum()) / prior_var - k + k * math.log(prior_var) - var.log().sum()))


def prior_variance(j: int, b: float = B_GRID, c: float = C_GRID) -> float:
    """lambda_j = c exp(-j / b), the j-th prior variance of the grid (j >= 1)."""
    count("j", j)
    return positive("c", c) * math.exp(-j / positive("b", b))


def bound_budget(kl: float, m: int, j: int, delta: float = DELTA, b: float = B_GRID) -> float:
    """B_RE = (KL + 2 ln j + ln(pi^2 m / (6 delta))) / (m - 1) for prior j of the grid (their Eq. 5
    with j = b ln(c / lambda)): the right-hand side of kl(e_hat || e) <= B_RE."""
    if isinstance(kl, bool) or not isinstance(kl, (int, float)) or math.isnan(kl) or kl < 0:
        raise UsageError(f"KL must be a number >= 0, got {kl!r}")
    count("m", m, 2)
    count("j", j)
    delta = open_unit("delta", delta)
    positive("b", b)
    return (kl + 2.0 * math.log(j) + math.log(math.pi ** 2 * m / (6.0 * delta))) / (m - 1)


def sample_convergence_bound(error: float, draws: int, delta_prime: float = DELTA_PRIME) -> float:
    """Upper bound on a mean error estimated from `draws` independent 0/1 draws:
    kl^-1(error, ln(2 / delta') / draws) (Langford & Caruana's sample-convergence bound)."""
    error = probability("error", error)
    count("draws", draws)
    delta_prime = open_unit("delta_prime", delta_prime)
    return kl_inverse(error, math.log(2.0 / delta_prime) / draws)


# ----------------------------------------------------------------------------- the posterior

def _check_data(x, y, what: str) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise UsageError(f"{what}: x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2 or not x.is_floating_point():
        raise UsageError(f"{what}: x must be a floating-point batch (N, ...), got {x.dtype} of shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise UsageError(f"{what}: y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        raise UsageError(f"{what}: y must hold integer class labels, got {y.dtype}")
    if len(y) and not bool(((y == 0) | (y == 1)).all()):
        raise UsageError(f"{what}: the bound is for binary classification: labels must be 0 or 1, got values "
                         f"{sorted(set(torch.unique(y).tolist()))[:10]}")


class GaussianPosterior(nn.Module):
    """Q = N(w, diag(exp(2 rho))) over every weight and bias of a chain of Linear/ReLU layers, with
    the prior P = N(w0, exp(2 eta) I). Built from the trained network (w, and s = |w| as the paper
    initializes it) and its initialization (w0); the networks themselves are not modified."""

    def __init__(self, model: nn.Module, init_model: nn.Module, x: torch.Tensor,
                 prior_var: float = PRIOR_VARIANCE_INIT):
        super().__init__()
        prior_var = positive("prior_var", prior_var)
        if not isinstance(model, nn.Module) or not isinstance(init_model, nn.Module):
            raise UsageError("model and init_model must be torch modules")
        calls = chain(model, x, allowed=SUPPORTED)
        init = dict(init_model.named_parameters())
        self.ops: list[tuple] = []
        self.mean, self.rho, self.prior = nn.ParameterList(), nn.ParameterList(), []
        for call in calls:
            m = call.module
            if isinstance(m, nn.Linear):
                idx = len(self.mean)
                for pname in ("weight", "bias"):
                    p = getattr(m, pname)
                    if p is None:
                        continue
                    full = f"{call.name}.{pname}"
                    if full not in init or init[full].shape != p.shape:
                        raise UsageError(f"init_model has no parameter {full!r} of shape {tuple(p.shape)}: it must "
                                         f"be the same architecture as model")
                    w = p.detach().float().clone()
                    self.mean.append(nn.Parameter(w))
                    # s = |w| (the paper's §4.3); a weight at exactly 0 starts at the smallest variance.
                    self.rho.append(nn.Parameter(0.5 * w.abs().clamp_min(1e-8).log()))
                    self.prior.append(init[full].detach().float().clone().to(w.device))
                self.ops.append(("linear", idx, m.bias is not None))
            elif isinstance(m, nn.ReLU):
                self.ops.append(("relu",))
            elif isinstance(m, nn.Flatten):
                self.ops.append(("flatten", m.start_dim, m.end_dim))
            else:   # Identity, and Dropout (an identity in eval mode: the bound is about eval-mode nets)
                self.ops.append(("identity",))
        self.eta = nn.Parameter(torch.tensor(0.5 * math.log(prior_var), device=self.mean[0].device))
        with torch.no_grad():
            out = self.forward(x[:1].to(self.mean[0].device))
        if out.dim() != 2 or out.shape[1] != 2:
            raise UsageError(f"{type(model).__name__} outputs shape {tuple(out.shape[1:])} per example: the bound "
                             f"needs a binary classifier with 2 output logits (build it with num_classes=2)")

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.mean)

    def variances(self) -> list[torch.Tensor]:
        """s = exp(2 rho) for every parameter tensor (differentiable)."""
        return [(2 * r).exp() for r in self.rho]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                variances: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of the mean network (generator None) or, with a generator, of a network drawn from
        Q independently for every example (local reparameterization, see the module docstring).
        `variances`: self.variances() if already computed (one exp per step, not two)."""
        a = x
        s = variances if variances is not None or generator is None else self.variances()
        for op in self.ops:
            if op[0] == "linear":
                _, i, has_bias = op
                w, b = self.mean[i], (self.mean[i + 1] if has_bias else None)
                mu = F.linear(a, w, b)
                if generator is None:
                    a = mu
                    continue
                var = F.linear(a * a, s[i], s[i + 1] if has_bias else None)
                noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                a = mu + var.clamp_min(1e-30).sqrt() * noise
            elif op[0] == "relu":
                a = F.relu(a)
            elif op[0] == "flatten":
                a = a.flatten(op[1], op[2])
        return a

    def kl(self, prior_var: torch.Tensor | None = None, variances: list[torch.Tensor] | None = None) -> torch.Tensor:
        """KL(Q || P) as a differentiable tensor (float32; `prior_var` defaults to exp(2 eta))."""
        lam = (2 * self.eta).exp() if prior_var is None else prior_var
        k = self.num_params
        var_sum = sum(v.sum() for v in (variances if variances is not None else self.variances()))
        dist = sum(((w - w0) ** 2).sum() for w, w0 in zip(self.mean, self.prior))
        log_s = sum(2 * r.sum() for r in self.rho)
        return 0.5 * ((var_sum + dist) / lam - k + k * torch.log(lam) - log_s)

    def kl_exact(self, prior_var: float) -> float:
        """KL(Q || N(w0, prior_var I)) in float64 (gaussian_kl over all parameters)."""
        cat = lambda ts: torch.cat([t.detach().reshape(-1) for t in ts])
        return gaussian_kl(cat(self.mean), cat([(2 * r).exp() for r in self.rho]), cat(self.prior), prior_var)


def _margin(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """logit_y - logit_other for 2-logit outputs."""
    sign = 1.0 - 2.0 * y.to(out.dtype)          # y = 0: +1, y = 1: -1
    return sign * (out[:, 0] - out[:, 1])


def surrogate_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The paper's logistic loss over ln 2, per example: ln(1 + exp(-margin)) / ln 2 >= 1[margin <= 0]."""
    return F.softplus(-_margin(out, y)) / math.log(2.0)


def errors(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0/1 errors per example (a tie counts as an error)."""
    return (_margin(out, y) <= 0).to(torch.float64)


def objective(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, m: int, generator: torch.Generator,
              delta: float = DELTA, b: float = B_GRID, c: float = C_GRID) -> tuple[torch.Tensor, dict]:
    """Their Eq. 4 on the batch (x, y) of a training set of m examples: the mean surrogate loss of
    per-example draws from Q plus sqrt(B_RE / 2) at the continuous lambda = exp(2 eta) (j clamped
    at >= 1: lambda at most c exp(-1/b), so that the union-bound term stays defined)."""
    s = posterior.variances()
    loss = surrogate_loss(posterior(x, generator, s), y).mean()
    # lambda stays on the grid's range, at most lambda_1 = c exp(-1/b) (where j >= 1)
    eta = posterior.eta.clamp(max=0.5 * (math.log(c) - 1.0 / b))
    kl = posterior.kl(prior_var=(2 * eta).exp(), variances=s)
    j = b * (math.log(c) - 2 * eta)
    budget = (kl + 2 * torch.log(j) + math.log(math.pi ** 2 * m / (6 * delta))) / (m - 1)
    total = loss + torch.sqrt(budget / 2)
    return total, {"objective": float(total.detach()), "surrogate": float(loss.detach()), "kl": float(kl.detach()),
                   "prior_variance": float((2 * eta.detach()).exp())}


def optimize(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, *, steps: int, batch_size: int = 100,
             lr: float = 1e-3, scale_lr: float | None = None, lr_drop_step: int | None = None, seed: int = 0,
             delta: float = DELTA, b: float = B_GRID, c: float = C_GRID, record_every: int = 0) -> list[dict]:
    """Minimize the objective over (w, rho, eta) with RMSprop (decay 0.9) for `steps` minibatch
    steps (batches from a seeded permutation per epoch): learning rate `lr` for the means w and
    `scale_lr` (default: lr) for rho and eta, both times 0.1 from step `lr_drop_step` on (the
    paper: 1e-3 for 150,000 steps, then 1e-4 for 50,000). Returns the recorded trajectory (every
    `record_every` steps, and the last; none when 0)."""
    _check_data(x, y, "optimize")
    count("steps", steps, 0)
    count("batch_size", batch_size)
    positive("lr", lr)
    scale_lr = lr if scale_lr is None else positive("scale_lr", scale_lr)
    if lr_drop_step is not None:
        count("lr_drop_step", lr_drop_step)
    open_unit("delta", delta)
    positive("b", b)
    positive("c", c)
    count("record_every", record_every, 0)
    m = len(x)
    if m < 2:
        raise UsageError(f"the bound needs at least 2 training examples, got {m}")
    device = posterior.mean[0].device
    x, y = x.to(device), y.to(device).long()
    order = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    opt = torch.optim.RMSprop([{"params": list(posterior.mean), "lr": lr},
                               {"params": list(posterior.rho) + [posterior.eta], "lr": scale_lr}], alpha=RMSPROP_DECAY)
    history, perm, pos = [], torch.randperm(m, generator=order), 0
    bs = min(batch_size, m)
    for step in range(1, steps + 1):
        if step == lr_drop_step:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        if pos + bs > m:
            perm, pos = torch.randperm(m, generator=order), 0
        idx = perm[pos:pos + bs].to(device)
        pos += bs
        total, rec = objective(posterior, x[idx], y[idx], m, noise, delta, b, c)
        if not math.isfinite(float(total.detach())):
            raise UsageError(f"the bound objective became {float(total.detach())} at step {step}: lower lr (got {lr})")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if record_every and (step % record_every == 0 or step == steps):
            history.append({"step": step, **rec})
    return history


@torch.no_grad()
def mc_error(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, passes: int,
             generator: torch.Generator, batch_size: int = 1000) -> float:
    """Mean 0/1 error over `passes` passes of per-example draws from Q (passes * len(x) draws)."""
    device = posterior.mean[0].device
    total = 0.0
    for _ in range(passes):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device).long()
            total += float(errors(posterior(xb, generator), yb).sum())
    return total / (passes * len(x))


@torch.no_grad()
def mean_error(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    device = posterior.mean[0].device
    wrong = sum(float(errors(posterior(x[i:i + batch_size].to(device)), y[i:i + batch_size].to(device).long()).sum())
                for i in range(0, len(x), batch_size))
    return wrong / len(x)


@dataclass
class PacBayesBound:
    bound: float                 # e(Q) <= bound with probability >= 1 - delta - delta'
    train_error: float           # Monte Carlo estimate of e_hat(Q, S)
    train_error_upper: float     # its sample-convergence upper bound
    test_error: float | None     # Monte Carlo estimate of Q's error on the test set (not part of the bound)
    mean_train_error: float      # the deterministic mean network's errors
    mean_test_error: float | None
    kl: float                    # KL(Q || P_lambda) at the rounded lambda
    prior_variance: float        # lambda_j
    prior_index: int             # j
    budget: float                # B_RE
    mcallester_term: float       # sqrt(B_RE / 2): the paper's figure for a vacuous bound
    m: int
    draws: int                   # Monte Carlo draws behind train_error (passes * m)
    num_params: int
    mean_distance: float         # ||w - w0||_2
    median_std: float            # median posterior standard deviation sqrt(s_i)
    delta: float
    delta_prime: float
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, x_test=None, y_test=None, *,
             passes: int, seed: int = 0, delta: float = DELTA, delta_prime: float = DELTA_PRIME,
             b: float = B_GRID, c: float = C_GRID) -> PacBayesBound:
    """The final bound of the posterior as it stands (their Eq. 6, lambda rounded to the grid)."""
    _check_data(x, y, "evaluate")
    if (x_test is None) != (y_test is None):
        raise UsageError("give both x_test and y_test, or neither")
    if x_test is not None:
        _check_data(x_test, y_test, "evaluate (test set)")
    count("passes", passes)
    delta, delta_prime = open_unit("delta", delta), open_unit("delta_prime", delta_prime)
    positive("b", b)
    positive("c", c)
    m = len(x)
    if m < 2:
        raise UsageError(f"the bound needs at least 2 training examples, got {m}")
    j_cont = b * (math.log(c) - 2 * float(posterior.eta.detach()))
    best = None
    for j in sorted({max(1, math.floor(j_cont)), max(1, math.ceil(j_cont))}):
        lam = prior_variance(j, b, c)
        kl = posterior.kl_exact(lam)
        budget = bound_budget(kl, m, j, delta, b)
        if best is None or budget < best[3]:
            best = (j, lam, kl, budget)
    j, lam, kl, budget = best
    gen = torch.Generator(device=posterior.mean[0].device).manual_seed(seed + 2)
    train_err = mc_error(posterior, x, y, passes, gen)
    upper = sample_convergence_bound(train_err, passes * m, delta_prime)
    test_err = mc_error(posterior, x_test, y_test, passes, gen) if x_test is not None else None
    with torch.no_grad():
        dist = math.sqrt(sum(float(((w.double() - w0.double()) ** 2).sum()) for w, w0 in zip(posterior.mean, posterior.prior)))
        stds = torch.cat([r.detach().reshape(-1) for r in posterior.rho]).double().exp()
    return PacBayesBound(
        bound=kl_inverse(upper, budget), train_error=train_err, train_error_upper=upper, test_error=test_err,
        mean_train_error=mean_error(posterior, x, y),
        mean_test_error=mean_error(posterior, x_test, y_test) if x_test is not None else None,
        kl=kl, prior_variance=lam, prior_index=j, budget=budget, mcallester_term=math.sqrt(budget / 2), m=m,
        draws=passes * m, num_params=posterior.num_params, mean_distance=dist, median_std=float(stds.median()),
        delta=delta, delta_prime=delta_prime)


INIT_GRID = tuple(range(0, 1501, 25))   # j of the starting variances searched by init_uniform
INIT_EXAMPLES = 1000                     # training examples the search scores each candidate on


@torch.no_grad()
def init_uniform(posterior: GaussianPosterior, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                 delta: float = DELTA, b: float = B_GRID, c: float = C_GRID) -> float:
    """Start the optimization at s_i = lambda for every parameter, with lambda = c exp(-j / b) the
    grid value (j in INIT_GRID) of smallest objective on the first INIT_EXAMPLES training examples
    (one fixed noise draw per candidate). Returns that lambda.

    Why not the paper's start (s = |w|, lambda = e^-6): with the paper's 200,000 steps it does not
    matter, with a CPU budget of hundreds it does. On the cpu-scale binary mnist5k network (seed 0,
    true labels) s = |w| starts at KL ~ 940,000 and a posterior training error of 0.45, and 500
    RMSprop steps left KL at 55,000 (bound 1.0); this start gave KL 5,400 and a bound of 0.82
    before any step. Any start is sound: the bound holds for every posterior."""
    m = len(x)
    xs, ys = x[:INIT_EXAMPLES].to(posterior.mean[0].device), y[:INIT_EXAMPLES].to(posterior.mean[0].device).long()
    gen = torch.Generator(device=posterior.mean[0].device)
    best = None
    for j in INIT_GRID:
        lam = c * math.exp(-j / b)
        for r in posterior.rho:
            r.fill_(0.5 * math.log(lam))
        posterior.eta.fill_(0.5 * math.log(lam))
        gen.manual_seed(seed + 3)
        value = float(objective(posterior, xs, ys, m, gen, delta, b, c)[0])
        if best is None or value < best[0]:
            best = (value, lam)
    lam = best[1]
    for r in posterior.rho:
        r.fill_(0.5 * math.log(lam))
    posterior.eta.fill_(0.5 * math.log(lam))
    return lam


INITS = ("uniform", "paper")


def pac_bayes_bound(model: nn.Module, init_model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_test=None,
                    y_test=None, *, steps: int, passes: int, batch_size: int = 100, lr: float = 1e-3,
                    scale_lr: float | None = None, lr_drop_step: int | None = None, init: str = "uniform",
                    seed: int = 0, delta: float = DELTA, delta_prime: float = DELTA_PRIME, b: float = B_GRID,
                    c: float = C_GRID, record_every: int = 0) -> PacBayesBound:
    """Dziugaite & Roy's bound for `model` (trained, binary, 2 logits) whose initialization was
    `init_model`, on its training set (x, y with labels 0/1): build Q around the trained weights
    (init "uniform": init_uniform's start; "paper": s = |w|, lambda = e^-6), optimize the objective
    for `steps` steps (optimize), then evaluate the final bound with `passes` Monte Carlo passes over
    the training set (and the test set, if given, for Q's test error)."""
    _check_data(x, y, "pac_bayes_bound")
    if init not in INITS:
        raise UsageError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    # every argument checked before any work (optimize and evaluate check them again)
    count("steps", steps, 0)
    count("passes", passes)
    count("batch_size", batch_size)
    positive("lr", lr)
    if scale_lr is not None:
        positive("scale_lr", scale_lr)
    open_unit("delta", delta)
    open_unit("delta_prime", delta_prime)
    if (x_test is None) != (y_test is None):
        raise UsageError("give both x_test and y_test, or neither")
    posterior = GaussianPosterior(model, init_model, x)
    if init == "uniform":
        init_uniform(posterior, x, y, seed=seed, delta=open_unit("delta", delta), b=positive("b", b),
                     c=positive("c", c))
    history = optimize(posterior, x, y, steps=steps, batch_size=batch_size, lr=lr, scale_lr=scale_lr,
                       lr_drop_step=lr_drop_step, seed=seed, delta=delta, b=b, c=c, record_every=record_every)
    out = evaluate(posterior, x, y, x_test, y_test, passes=passes, seed=seed, delta=delta, delta_prime=delta_prime,
                   b=b, c=c)
    out.history = history
    return out

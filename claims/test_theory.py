"""Zhang et al. 2017, §4 (Theorem 1, Appendix C) and §5 (implicit regularization: linear models and
kernel interpolation). Nothing here trains a network: the claims are constructions and linear
algebra, computed in float64 on the session's device.

Test names start with the claim id (TH1, S5_...), so `pytest claims/ -k "TH1 or S5"` selects them.

Protocol notes (choices the paper leaves open, fixed here before measuring):
* Theorem 1 on real data fits the harness's own training inputs (the preprocessed `dataset`), all
  4,000 mnist5k digits at cpu scale, 10,000 CIFAR-10 images at paper scale, one-hot targets.
* §5 linear models: the first 64 training images of the session's dataset (d = 784 on MNIST,
  2,352 on CIFAR-10), targets +-1 by label parity; and a Gaussian 256 x 1024 problem. Plain SGD,
  one example a step, lr = 1 / max ||x_i||^2, until ||Xw - y|| <= 1e-13 ||y||.
* Kernels: pixels / 255, the Gaussian kernel exp(-0.02 ||x - x'||^2) (the paper's), one-hot
  targets, K alpha = Y solved exactly (Cholesky, float64): dense on the session's device when
  n^2 float64 fits its memory (the paper's 60k with --gpu: 28.8 GB, cuSOLVER), else K's lower
  triangle in tiles (`rethinkbench.theory.tiled`; 60k on a CPU: 14.9 GB); params `solver` says which,
  `peak_gpu_gb` / `peak_rss_gb` what it took. The Gabor representation gets the
  bandwidth that keeps gamma * median ||x - x'||^2 at its pixel value (`features.matched_gamma`),
  so both kernels are equally wide relative to their data; the paper does not say what it did.
"""
import math
import time

import pytest
import torch
import torch.nn.functional as F

import rethinkbench as rb
from rethinkbench import theory
from rethinkbench.theory import features
from rethinkbench.theory import kernels
from rethinkbench.theory import linear
from rethinkbench.suite.evidence import ClaimInfo
from rethinkbench.report.tolerance import CONDITION_NUMBER
from rethinkbench.base.seeding import generator
from rethinkbench.theory.testing import check_theorem1, point_sets

SIZES = {
    "smoke": dict(th1_n=300, depth_n=200, sgd_n=32, gauss=(64, 256), kernel_n=(1000, 500), examples=30),
    "cpu": dict(th1_n=4000, depth_n=1000, sgd_n=64, gauss=(256, 1024), kernel_n=(None, None), examples=100),
    "paper": dict(th1_n=10000, depth_n=4000, sgd_n=64, gauss=(256, 1024), kernel_n=(None, None), examples=500),
}
_MEMO: dict = {}


def sizes(scale) -> dict:
    return SIZES[scale.name]


# =========================================================================== §4: Theorem 1

TH1 = ClaimInfo(
    id="Z-TH1",
    title="A two-layer ReLU net with 2n + d weights fits any function on n points",
    statement="There exists a two-layer neural network with ReLU activations and 2n + d weights that "
              "can represent any function on a sample of size n in d dimensions (Theorem 1).",
    source="Zhang et al. 2017, §4, Theorem 1 (proof in the appendix)",
    paper="Constructive proof: c(x) = sum_j w_j max(<a,x> - b_j, 0), A = [max(x_i - b_j, 0)] lower "
          "triangular with positive diagonal, w = A^-1 y. No numbers.",
)


@pytest.mark.claim(TH1)
def test_TH1_property(claim, scale):
    """H0: some set of distinct points and real targets is not fitted exactly (relative error
    > 1e-6 in float64), or the net has other than 2n + d weights (d + n + n*k for k outputs), or
    A's smallest eigenvalue differs from min_i (z_i - b_i). Hypothesis searches for a
    counterexample (derandomized, a fixed number of examples); one falsifies the claim."""
    from hypothesis import given, settings

    results = []

    @settings(max_examples=sizes(scale)["examples"], deadline=None, derandomize=True, database=None)
    @given(point_sets(max_n=24, max_d=8))
    def prop(data):
        results.append(check_theorem1(*data))

    claim.test = "Hypothesis property over n ≤ 24, d ≤ 8, targets in [-1e6, 1e6]: no counterexample"
    t0 = time.perf_counter()
    try:
        prop()
    except AssertionError as exc:   # Hypothesis found (and shrank) a counterexample
        claim.measure("examples", len(results))
        claim.check(False, f"counterexample after {len(results)} examples: {exc}")
    claim.measure("examples", len(results))
    claim.measure("max_relative_error", max(r["relative_error"] for r in results), tolerance={"abs": 1e-6})
    claim.measure("max_eigenvalue_error", max(r["eigenvalue_error"] for r in results), tolerance={"abs": 1e-9})
    claim.measure("max_n", max(r["n"] for r in results))
    claim.measure("seconds", time.perf_counter() - t0, unit=" s")
    claim.check(len(results) > 0, "Hypothesis ran no examples")


@pytest.mark.claim(TH1)
@pytest.mark.parametrize("labels", ["true_labels", "random_labels"])
def test_TH1_fits_any_labeling_of_real_data(claim, scale, device, dataset, labels):
    """H0: the construction does not reproduce every label of n real training images (argmax of
    the k outputs != label for some i), or its max |net(x_i) - y_i| > 1e-6, or its weight count is
    not d + n + n*k. Labels: the true ones, or uniformly random ones (`rb.corrupt`)."""
    n = min(sizes(scale)["th1_n"], dataset.n_train)
    ds = dataset if labels == "true_labels" else rb.corrupt(dataset, labels, seed=0)
    x = ds.x_train[:n].to(device=device, dtype=torch.float64)
    y_int = ds.y_train[:n].to(device)
    k = ds.num_classes
    y = F.one_hot(y_int, k).to(torch.float64)
    t0 = time.perf_counter()
    net = theory.fit_any_labeling(x, y, generator=generator(0, "theorem1-direction"))
    seconds = time.perf_counter() - t0
    info = net.fit_info
    acc = float((net(x).argmax(1) == y_int).double().mean())
    d = x[0].numel()
    claim.params.update(dataset=ds.name, n=info.n, d=d, k=k)
    claim.test = "argmax(net(x_i)) == label_i for all i, max |net(x) - y| ≤ 1e-6, weights == d + n + n·k"
    claim.measure("train_accuracy", acc, paper=1.0, tolerance={"abs": 0.0})
    claim.measure("num_weights", info.num_weights, tolerance={"abs": 0})
    claim.measure("num_weights_scalar_target", 2 * info.n + d,
                  paper_note="2n + d: one output; each further output column adds n weights")
    claim.measure("max_abs_error", info.max_abs_error, tolerance={"abs": 1e-6})
    claim.measure("cond1_A", info.cond1, tolerance=CONDITION_NUMBER)
    claim.measure("relative_min_gap", info.relative_min_gap, tolerance={"rel": 0.01})
    claim.measure("min_eigenvalue_A", info.min_eigenvalue)
    claim.measure("seconds", seconds, unit=" s")
    claim.check(acc == 1.0 and info.max_abs_error <= 1e-6 and info.num_weights == d + info.n + info.n * k,
                f"n={info.n}, d={d}, k={k}: train accuracy {acc:.6f}, max |net(x) - y| = "
                f"{info.max_abs_error:.3g}, {info.num_weights} weights, cond1(A) = {info.cond1:.3g}")


TH1_DEPTH = ClaimInfo(
    id="Z-TH1-depth",
    title="Depth k with width O(n/k) also fits any function on n points",
    statement="A network of depth k in which each layer has only O(n/k) parameters can represent any "
              "function on a sample of size n.",
    source="Zhang et al. 2017, §4 (after Theorem 1) and the appendix (Appendix C)",
    paper="Existence (construction in the appendix). No numbers.",
)


@pytest.mark.claim(TH1_DEPTH)
def test_TH1_depth_deeper_narrower_nets_fit_any_labeling(claim, scale, device, dataset):
    """H0: for some depth k, the constructed net (`theory.deepen`: k linear layers; hidden layer 1
    is the projection alone, the others have width ≤ ceil(n/(k-2)) + 1 + 2·outputs and at most
    (2·outputs + 2)·ceil(n/(k-2)) + 4·outputs + 1 nonzero parameters) misclassifies a random-label
    training image or is off by > 1e-6. See `theory.deepen` for the construction (ours, built on
    the two-layer one)."""
    n = min(sizes(scale)["depth_n"], dataset.n_train)
    ds = rb.corrupt(dataset, "random_labels", seed=1)
    x = ds.x_train[:n].to(device=device, dtype=torch.float64)
    y_int = ds.y_train[:n].to(device)
    k = ds.num_classes
    y = F.one_hot(y_int, k).to(torch.float64)
    net = theory.fit_any_labeling(x, y, generator=generator(1, "theorem1-direction"))
    n, d = net.fit_info.n, x[0].numel()
    rows = [[2, n, n, net.fit_info.num_weights, 1.0, net.fit_info.max_abs_error]]
    ok, msgs = True, []
    for depth in (3, 5, 9, 17, 33):
        deep = theory.deepen(net, depth)
        with torch.no_grad():
            out = deep(x)
        stats = theory.layer_stats(deep)
        m = math.ceil(n / (depth - 2))
        width = max(s["width"] for s in stats[1:-1])
        nonzero = max(s["nonzero"] for s in stats[1:-1])
        acc = float((out.argmax(1) == y_int).double().mean())
        err = float((out - y).abs().max())
        rows.append([depth, width, m + 1 + 2 * k, sum(s["nonzero"] for s in stats), acc, err])
        claim.measure(f"max_hidden_width_depth{depth}", width, tolerance={"abs": 0})
        claim.measure(f"max_abs_error_depth{depth}", err, tolerance={"abs": 1e-6})
        good = (acc == 1.0 and err <= 1e-6 and width <= m + 1 + 2 * k and len(stats) == depth
                and nonzero <= (2 * k + 2) * m + 4 * k + 1 and stats[0]["nonzero"] <= d + 1)
        ok &= good
        if not good:
            msgs.append(f"depth {depth}: width {width} (bound {m + 1 + 2 * k}), {nonzero} nonzero "
                        f"parameters in a layer, acc {acc:.4f}, error {err:.3g}")
    claim.params.update(n=n, k=k)
    claim.test = ("for k in {3,5,9,17,33}: 100% of random labels, error ≤ 1e-6, hidden width ≤ "
                  "ceil(n/(k-2)) + 1 + 2·outputs, O(n/k) nonzero parameters per layer")
    claim.figure({"kind": "table", "title": f"Depth vs width, n = {n} random-label images ({k} outputs)",
                  "columns": ["depth k", "max hidden width", "width bound", "nonzero parameters",
                              "train acc", "max |error|"],
                  "rows": rows})
    claim.check(ok, "; ".join(msgs))


# =========================================================================== §5: linear models

SPAN = ClaimInfo(
    id="Z-S5-span",
    title="SGD on a linear model stays in the span of the data",
    statement="SGD on a linear least-squares model started at w0 = 0 keeps w in the span of the data "
              "points, w = X^T alpha, so an interpolating solution solves X X^T alpha = y.",
    source="Zhang et al. 2017, §5",
    paper="Analytical (no numbers).",
)
MINNORM = ClaimInfo(
    id="Z-S5-minnorm",
    title="SGD from zero finds the minimum-norm interpolant",
    statement="The solution SGD reaches from w0 = 0 is the minimum-l2-norm interpolant pinv(X) y; "
              "from w0 != 0 it is not (it keeps w0's component outside the row space).",
    source="Zhang et al. 2017, §5",
    paper="Analytical (no numbers).",
)
HESSIAN = ClaimInfo(
    id="Z-S5-hessian",
    title="Curvature cannot tell the global minima of a linear model apart",
    statement="The Hessian of a linear model's squared loss is the same at every global minimum, so "
              "curvature does not distinguish the interpolating solutions.",
    source="Zhang et al. 2017, §5",
    paper="Analytical (no numbers).",
)


def sgd_problem(kind, scale, device, dataset):
    """(X, y, X_test, y_test, w0) in float64 on `device`; memoized (shared by three claims)."""
    key = ("problem", kind, scale.name, device, dataset.name)
    if key not in _MEMO:
        if kind == "pixels":
            n = sizes(scale)["sgd_n"]
            X = dataset.x_train[:n].reshape(n, -1).to(device, torch.float64)
            y = torch.where(dataset.y_train[:n] % 2 == 0, 1.0, -1.0).to(device, torch.float64)
            Xt = dataset.x_test.reshape(len(dataset.x_test), -1).to(device, torch.float64)
            yt = torch.where(dataset.y_test % 2 == 0, 1.0, -1.0).to(device, torch.float64)
        else:
            n, d = sizes(scale)["gauss"]
            g = generator(0, "gaussian-least-squares")
            X = torch.randn(n, d, generator=g, dtype=torch.float64).to(device) / math.sqrt(d)
            y = torch.randn(n, generator=g, dtype=torch.float64).to(device)
            Xt, yt = None, None
        w0 = torch.randn(X.shape[1], generator=generator(0, "sgd-start"), dtype=torch.float64).to(device)
        w0 = w0 / w0.norm() * float(linear.min_norm_solution(X, y).norm())   # as long as w*
        _MEMO[key] = (X, y, Xt, yt, w0)
    return _MEMO[key]


def sgd_runs(kind, scale, device, dataset):
    """SGD from 0 and from w0 on the problem; memoized."""
    key = ("sgd", kind, scale.name, device, dataset.name)
    if key not in _MEMO:
        X, y, _, _, w0 = sgd_problem(kind, scale, device, dataset)
        t0 = time.perf_counter()
        zero = linear.sgd_least_squares(X, y, generator=generator(0, "sgd-order"), max_epochs=20_000)
        t1 = time.perf_counter()
        start = linear.sgd_least_squares(X, y, w0=w0, generator=generator(0, "sgd-order"), max_epochs=20_000)
        _MEMO[key] = (zero, start, t1 - t0)
    return _MEMO[key]


def residual_figure(zero, start, title):
    return {"kind": "line", "title": title, "xlabel": "epoch", "ylabel": "||Xw - y|| / ||y||", "logy": True,
            "series": [{"label": "w0 = 0", "x": list(range(1, len(zero.residual_history) + 1)),
                        "y": zero.residual_history},
                       {"label": "w0 != 0", "x": list(range(1, len(start.residual_history) + 1)),
                        "y": start.residual_history}]}


@pytest.mark.claim(SPAN)
@pytest.mark.parametrize("data", ["pixels", "gaussian"])
def test_S5_span_sgd_stays_in_the_span_of_the_data(claim, scale, device, dataset, data):
    """H0: SGD from w0 = 0 leaves the row space of X: ||w - P w|| / ||w|| > 1e-10 at the end (P the
    projection onto the row space); or the final w does not interpolate (||Xw - y|| > 1e-13 ||y||).
    Also from w0 != 0, the displacement w - w0 must lie in the row space."""
    X, y, _, _, w0 = sgd_problem(data, scale, device, dataset)
    zero, start, seconds = sgd_runs(data, scale, device, dataset)
    dist = linear.row_space_distance(X, zero.w)
    dist_move = linear.row_space_distance(X, start.w - w0)
    claim.params.update(n=X.shape[0], d=X.shape[1])
    claim.test = "row-space distance of w (from 0) and of w - w0 (from w0) ≤ 1e-10, interpolating"
    claim.measure("row_space_distance", dist, tolerance={"abs": 1e-10})
    claim.measure("row_space_distance_of_displacement_from_w0", dist_move, tolerance={"abs": 1e-10})
    claim.measure("relative_residual", zero.relative_residual)
    claim.measure("epochs", zero.epochs, tolerance={"rel": 0.5})
    claim.measure("seconds", seconds, unit=" s")
    claim.figure(residual_figure(zero, start, f"SGD on least squares ({data}, n={X.shape[0]}, d={X.shape[1]})"))
    claim.check(zero.converged and dist <= 1e-10 and dist_move <= 1e-10,
                f"{data}: row-space distance {dist:.3g} (from 0), {dist_move:.3g} (w - w0), "
                f"residual {zero.relative_residual:.3g} after {zero.epochs} epochs")


@pytest.mark.claim(MINNORM)
@pytest.mark.parametrize("data", ["pixels", "gaussian"])
def test_S5_minnorm_sgd_from_zero_is_the_minimum_norm_interpolant(claim, scale, device, dataset, data):
    """H0: ||w_SGD(0) - pinv(X) y|| > 1e-8 ||pinv(X) y||; or SGD from w0 != 0 also lands there
    (distance ≤ 1e-3 relative) instead of at pinv(X) y + (I - P) w0 (to 1e-8)."""
    X, y, _, _, w0 = sgd_problem(data, scale, device, dataset)
    zero, start, _ = sgd_runs(data, scale, device, dataset)
    w_star = linear.min_norm_solution(X, y)
    scale_w = float(w_star.norm())
    d_zero = float((zero.w - w_star).norm()) / scale_w
    d_start = float((start.w - w_star).norm()) / scale_w
    predicted = w_star + linear.null_space_component(X, w0)
    d_pred = float((start.w - predicted).norm()) / float(predicted.norm())
    claim.params.update(n=X.shape[0], d=X.shape[1])
    claim.test = "‖w(0) − pinv(X)y‖ ≤ 1e-8‖pinv(X)y‖; ‖w(w0) − pinv(X)y‖ > 1e-3‖·‖ and w(w0) = pinv(X)y + (I−P)w0 to 1e-8"
    claim.measure("distance_to_pinv_from_zero", d_zero, tolerance={"abs": 1e-8})
    claim.measure("distance_to_pinv_from_w0", d_start, tolerance={"rel": 0.01})
    claim.measure("distance_to_predicted_from_w0", d_pred, tolerance={"abs": 1e-8})
    claim.measure("norm_ratio_w0_run_over_min_norm", float(start.w.norm()) / scale_w)
    claim.check(zero.converged and start.converged and d_zero <= 1e-8 and d_start > 1e-3 and d_pred <= 1e-8,
                f"{data}: from 0 at {d_zero:.3g} of pinv(X)y; from w0 at {d_start:.3g} (predicted "
                f"offset matched to {d_pred:.3g}); converged {zero.converged}/{start.converged}")


@pytest.mark.claim(HESSIAN)
def test_S5_hessian_is_the_same_at_every_interpolant(claim, scale, device, dataset):
    """H0: the Hessians (automatic differentiation of 1/(2n)||Xw - y||^2) at two different
    interpolating solutions, SGD's from 0 (the minimum-norm one) and from w0 != 0, differ by more
    than 1e-12 relative. Recorded alongside: their norms and test accuracies (sign of <x, w> vs
    label parity), which do differ."""
    X, y, Xt, yt, _ = sgd_problem("pixels", scale, device, dataset)
    zero, start, _ = sgd_runs("pixels", scale, device, dataset)
    H1 = linear.least_squares_hessian(X, y, zero.w)
    H2 = linear.least_squares_hessian(X, y, start.w)
    ref = X.T @ X / X.shape[0]
    diff = float((H1 - H2).abs().max()) / float(ref.abs().max())
    formula = float((H1 - ref).abs().max()) / float(ref.abs().max())
    acc = lambda w: float((torch.sign(Xt @ w) == yt).double().mean())   # noqa: E731
    claim.params.update(n=X.shape[0], d=X.shape[1])
    claim.test = "max |H(w1) − H(w2)| ≤ 1e-12 max |XᵀX/n| at two interpolants w1 ≠ w2"
    claim.measure("hessian_relative_difference", diff, tolerance={"abs": 1e-12})
    claim.measure("hessian_vs_formula", formula, tolerance={"abs": 1e-12})
    claim.measure("solution_distance", float((zero.w - start.w).norm()) / float(zero.w.norm()))
    claim.measure("norm_min_norm_solution", float(zero.w.norm()))
    claim.measure("norm_other_solution", float(start.w.norm()))
    claim.measure("test_acc_min_norm_solution", acc(zero.w), tolerance={"abs": 0.02})
    claim.measure("test_acc_other_solution", acc(start.w), tolerance={"abs": 0.02})
    claim.check(diff <= 1e-12 and float((zero.w - start.w).norm()) > 1e-3 * float(zero.w.norm()),
                f"Hessians differ by {diff:.3g} (relative) at solutions "
                f"{float((zero.w - start.w).norm()) / float(zero.w.norm()):.3g} apart")


# =========================================================================== §5: kernels

KERNEL_MNIST = ClaimInfo(
    id="Z-S5-kernel-mnist",
    title="Unregularized kernel interpolation generalizes on MNIST",
    statement="Solving K alpha = y exactly (no regularization) with a Gaussian kernel on MNIST gives "
              "1.2% test error.",
    source="Zhang et al. 2017, §5",
    paper="1.2% test error on MNIST (60k training digits); the authors' demo code reports 1.22%.",
)
NORM_NOT_PREDICTIVE = ClaimInfo(
    id="Z-S5-norm-not-predictive",
    title="A smaller norm does not mean better generalization",
    statement="With a Gabor-wavelet preprocessing the kernel interpolant has lower test error (0.6% "
              "vs 1.2%) but a larger RKHS norm (~390 vs ~220): the minimum norm is not predictive "
              "of generalization error.",
    source="Zhang et al. 2017, §5",
    paper="Error 1.2% -> 0.6% with Gabor wavelets; norm ~220 -> ~390 (read from the text).",
)
_NORM_CONVENTION = ("with gamma = 0.02 kept on the Gabor features it is larger, so the direction "
                    "depends on the bandwidth convention, which the paper does not state")
KNOWN_NORM = {   # measured 2026-11 (CPU, float64); mnist5k only
    "cpu": "on mnist5k (4,000 digits) the Gabor interpolant's RKHS norm is not larger with the "
           "matched bandwidth (38.9 vs 39.4; error 1.9% vs 3.4%); " + _NORM_CONVENTION + " (145)",
    "smoke": "on 1,000 mnist5k digits the Gabor interpolant's RKHS norm is not larger with the "
             "matched bandwidth (20.5 vs 21.5; error 4.0% vs 6.8%); " + _NORM_CONVENTION + " (58.6)",
}


def kernel_dataset(request, scale):
    explicit = request.config.option.dataset
    name = explicit or ("mnist" if scale.name == "paper" else "mnist5k")
    if name == "cifar10":
        pytest.skip("an MNIST claim (28x28 digits); --dataset cifar10 is covered by Z-S5-cifar-kernel")
    return name


def kernel_run(name, scale, device, data_root, representation):
    """K alpha = Y on pixels or Gabor features; memoized (the pixel run serves two claims)."""
    key = ("kernel", name, scale.name, device, representation)
    if key in _MEMO:
        return _MEMO[key]
    if ("pixels", name) not in _MEMO:
        _MEMO["pixels", name] = kernels.load_pixels(name, seed=0, data_root=data_root)
    px = _MEMO["pixels", name]
    n_tr, n_te = sizes(scale)["kernel_n"]
    xtr, ytr, xte, yte = px.x_train[:n_tr], px.y_train[:n_tr], px.x_test[:n_te], px.y_test[:n_te]
    gamma, t0 = kernels.MNIST_GAMMA, time.perf_counter()
    if representation == "pixels":
        ftr, fte = xtr, xte
    else:
        fkey = ("gabor-features", name, scale.name, device)
        if fkey not in _MEMO:
            _MEMO[fkey] = (features.gabor_features(xtr, device=device),
                           features.gabor_features(xte, device=device))
        ftr, fte = _MEMO[fkey]
        if representation == "gabor":
            gamma = features.matched_gamma(kernels.MNIST_GAMMA,
                                           features.median_sq_distance(xtr[:1000].to(device)),
                                           features.median_sq_distance(ftr[:1000]))
    feat_seconds = time.perf_counter() - t0
    res = kernels.kernel_classification(ftr, ytr, fte, yte, num_classes=px.num_classes, gamma=gamma,
                                        device=device)
    _MEMO[key] = (res, gamma, feat_seconds, px.name)
    return _MEMO[key]


@pytest.mark.claim(KERNEL_MNIST)
def test_S5_kernel_mnist_interpolation_generalizes(claim, request, scale, device, data_root):
    """H0 (any scale): K alpha = Y is not solved to interpolation (a training error, or max
    residual > 1e-6), or test error ≥ 10% (chance is 90%; 10% is far below it and above what a
    4,000-digit kernel machine gets). At paper scale on full MNIST also H0: |error - 1.2%| > 0.5
    points."""
    name = kernel_dataset(request, scale)
    res, gamma, _, _ = kernel_run(name, scale, device, data_root, "pixels")
    paper = 0.012 if name == "mnist" and res.n_train == 60000 else None
    claim.params.update(dataset=name, n_train=res.n_train, n_test=res.n_test, gamma=gamma)
    claim.test = "interpolates (train error 0, residual ≤ 1e-6) and test error < 10%" + (
        "; |error − 1.2%| ≤ 0.5 points" if paper else "")
    claim.measure("test_error", res.test_error, paper=paper, tolerance={"abs": 0.005})
    claim.measure("rkhs_norm", res.rkhs_norm, paper=220.0 if paper else None, paper_note="(read from the text)",
                  tolerance={"rel": 0.02})
    claim.measure("train_error", res.train_error, tolerance={"abs": 0.0})
    claim.measure("max_train_residual", res.max_train_residual, tolerance={"abs": 1e-6})
    claim.measure("cond1_K", res.cond1, tolerance=CONDITION_NUMBER)
    record_solver(claim, res)
    for part, s in res.seconds.items():
        claim.measure(f"seconds_{part}", s, unit=" s")
    ok = res.train_error == 0.0 and res.max_train_residual <= 1e-6 and res.test_error < 0.10
    if paper is not None:
        ok &= abs(res.test_error - paper) <= 0.005
    claim.check(ok, f"{name}, n={res.n_train}: test error {res.test_error:.4f}, train error "
                    f"{res.train_error:.4f}, max residual {res.max_train_residual:.3g}, "
                    f"||f||_H = {res.rkhs_norm:.1f}, cond1(K) = {res.cond1:.3g} "
                    f"({solver_text(res)})")


def solver_text(res) -> str:
    where = f"{res.solver} {res.method} on {res.device}"
    return where + (f", tiles of {res.tile}" if res.tile else "")


def record_solver(claim, res) -> None:
    """Which solver ran and what it took: params `solver` / `solve_method` / `solver_device` (and
    `tile`), measured `kernel_gb` (K as stored: n^2 float64 dense, the lower tiles tiled),
    `tile_size` when tiled, and the peak memory: `peak_gpu_gb` on CUDA, `peak_rss_gb` (the pytest
    process's high-water mark so far) on CPU."""
    claim.params.update(solve_method=res.method, solver=res.solver, solver_device=res.device)
    claim.measure("kernel_gb", res.kernel_gb, unit=" GB")
    if res.tile is not None:
        claim.params.update(tile=res.tile)
        claim.measure("tile_size", res.tile, unit=" rows")
    if res.peak_gb is not None:
        claim.measure("peak_gpu_gb", res.peak_gb, unit=" GB")
    elif res.peak_rss_gb is not None:
        claim.measure("peak_rss_gb", res.peak_rss_gb, unit=" GB")


@pytest.mark.claim(NORM_NOT_PREDICTIVE)
def test_S5_norm_not_predictive_gabor_lowers_error_raises_norm(claim, request, scale, device, data_root):
    """H0 (two parts): (a) the Gabor interpolant's test error is not lower than the pixel one's;
    (b) its RKHS norm sqrt(alpha^T K alpha) is not larger. (a) is asserted as is; (b) is the
    paper's point and, where it is known not to reproduce, a strict xfail with the numbers."""
    name = kernel_dataset(request, scale)
    raw, _, _, _ = kernel_run(name, scale, device, data_root, "pixels")
    gab, gamma, feat_s, _ = kernel_run(name, scale, device, data_root, "gabor")
    lit, _, _, _ = kernel_run(name, scale, device, data_root, "gabor_gamma0.02")
    paper_scale = name == "mnist" and raw.n_train == 60000
    claim.params.update(dataset=name, n_train=raw.n_train, gamma_gabor=gamma)
    claim.test = "test error(Gabor) < test error(pixels), and RKHS norm(Gabor) > RKHS norm(pixels)"
    claim.measure("test_error_pixels", raw.test_error, paper=0.012 if paper_scale else None, tolerance={"abs": 0.005})
    claim.measure("test_error_gabor", gab.test_error, paper=0.006 if paper_scale else None, tolerance={"abs": 0.005})
    claim.measure("rkhs_norm_pixels", raw.rkhs_norm, paper=220.0 if paper_scale else None, tolerance={"rel": 0.02})
    claim.measure("rkhs_norm_gabor", gab.rkhs_norm, paper=390.0 if paper_scale else None, tolerance={"rel": 0.02})
    claim.measure("train_error_gabor", gab.train_error, tolerance={"abs": 0.0})
    claim.measure("cond1_K_gabor", gab.cond1, tolerance=CONDITION_NUMBER)
    # Sensitivity, not part of the decision: gamma = 0.02 kept on the Gabor features.
    claim.measure("test_error_gabor_gamma0.02", lit.test_error, tolerance={"abs": 0.005})
    claim.measure("rkhs_norm_gabor_gamma0.02", lit.rkhs_norm, tolerance={"rel": 0.02})
    claim.measure("seconds_gabor_features", feat_s, unit=" s")
    claim.figure({"kind": "bar", "title": f"Kernel interpolation on {name} (n={raw.n_train})",
                  "xlabel": "input", "ylabel": "test error",
                  "bars": [{"label": "pixels", "value": raw.test_error},
                           {"label": "Gabor (matched gamma)", "value": gab.test_error},
                           {"label": "Gabor (gamma 0.02)", "value": lit.test_error}]})
    claim.figure({"kind": "bar", "title": "RKHS norm of the interpolant", "xlabel": "input",
                  "ylabel": "sqrt(alpha^T K alpha)",
                  "bars": [{"label": "pixels", "value": raw.rkhs_norm},
                           {"label": "Gabor (matched gamma)", "value": gab.rkhs_norm},
                           {"label": "Gabor (gamma 0.02)", "value": lit.rkhs_norm}]})
    claim.check(gab.test_error < raw.test_error,
                f"test error Gabor {gab.test_error:.4f} ≥ pixels {raw.test_error:.4f}")
    known = KNOWN_NORM.get(scale.name) if name == "mnist5k" else None
    claim.check(gab.rkhs_norm > raw.rkhs_norm,
                f"{name}, n={raw.n_train}: RKHS norm Gabor {gab.rkhs_norm:.1f} ≤ pixels "
                f"{raw.rkhs_norm:.1f} (errors {gab.test_error:.4f} vs {raw.test_error:.4f}; with "
                f"gamma 0.02 on Gabor: norm {lit.rkhs_norm:.1f}, error {lit.test_error:.4f})",
                known_failure=known)


CIFAR_KERNEL = ClaimInfo(
    id="Z-S5-cifar-kernel",
    title="Kernel interpolation and random features on CIFAR-10",
    statement="On CIFAR-10 a Gaussian kernel interpolant gets 46% test error; least squares on "
              "random convolutional features (32,000 random filters) 17%, and 15% with l2 "
              "regularization.",
    source="Zhang et al. 2017, §5",
    paper="Gaussian kernel 46%; random conv features (32,000 filters) 17%; + l2 15%.",
)
# gamma * median ||x - x'||^2 of the paper's MNIST kernel: 0.02 * 104.5, the median over the first
# 1,000 mnist5k training digits (pixels / 255). CIFAR-10's Gaussian kernel gets the same relative
# width (the paper does not give its bandwidth).
MNIST_GAMMA_TIMES_MEDIAN = 0.02 * 104.5
CIFAR_FILTERS = 32_000
CIFAR_PAPER = {"gaussian": 0.46, "random_features": 0.17, "random_features_l2": 0.15}
RIDGE_REL = 1e-3   # l2 strength relative to mean diag(K); the paper does not give its own


@pytest.mark.claim(CIFAR_KERNEL)
@pytest.mark.scales("paper")
@pytest.mark.parametrize("method", ["gaussian", "random_features", "random_features_l2"])
def test_S5_cifar_kernel(claim, device, data_root, method):
    """H0: test error more than 5 points from the paper's (46% / 17% / 15%): the bandwidth,
    filter distribution and l2 strength are not in the paper, so only the band is tested.
    Paper scale only: all 50,000 training images, a 20 GB float64 system on the GPU."""
    px = kernels.load_pixels("cifar10", seed=0, data_root=data_root)
    t0 = time.perf_counter()
    if method == "gaussian":
        gamma = MNIST_GAMMA_TIMES_MEDIAN / features.median_sq_distance(px.x_train[:1000].to(device))
        res = kernels.kernel_classification(px.x_train, px.y_train, px.x_test, px.y_test,
                                            num_classes=10, gamma=gamma, device=device)
        err, norm, cond, method_used = res.test_error, res.rkhs_norm, res.cond1, res.method
        claim.params.update(gamma=gamma)
        record_solver(claim, res)
    else:
        gram = lambda: features.random_conv_gram(   # noqa: E731
            px.x_train, px.x_test, num_filters=CIFAR_FILTERS, device=device,
            generator=generator(0, "random-filters", device=device))
        k_train, k_test = gram()
        ridge = RIDGE_REL * float(k_train.diagonal().mean()) if method.endswith("_l2") else 0.0
        Y = F.one_hot(px.y_train, 10).to(device, torch.float64)
        alpha, method_used, quad, cond = kernels.solve_kernel_system(
            k_train, Y, ridge=ridge, overwrite=True, rebuild=lambda: gram()[0])
        del k_train
        err = float(((k_test @ alpha).argmax(1) != px.y_test.to(device)).double().mean())
        norm = math.sqrt(max(quad, 0.0))
        # The feature Gram matrices come dense from random_conv_gram: dense solve on the device.
        claim.params.update(filters=CIFAR_FILTERS, ridge=ridge, solver="dense", solver_device=str(device))
    seconds = time.perf_counter() - t0
    paper = CIFAR_PAPER[method]
    claim.test = "|test error − paper| ≤ 5 points"
    claim.measure("test_error", err, paper=paper, tolerance={"abs": 0.01})
    claim.measure("rkhs_norm", norm, tolerance={"rel": 0.05})
    claim.measure("cond1_K", cond, tolerance=CONDITION_NUMBER)
    claim.params.update(solve_method=method_used)
    claim.measure("seconds", seconds, unit=" s")
    claim.check(abs(err - paper) <= 0.05, f"{method}: test error {err:.4f} vs paper {paper:.2f}")

"""Model-wise double descent (Nakkiran et al. 2019, Deep double descent, Fig. 1; Belkin, Hsu, Ma &
Mandal 2019, Reconciling modern machine learning practice and the bias-variance trade-off, Fig. 3):
with label noise on the training set, the test error of networks of growing width first falls, then
rises to a peak near the width where the network first fits its (noisy) training set, and falls
again beyond it.

A long claim: a width sweep, every width trained long without early stopping and without stopping
at fit. At cpu scale it runs only with `--long` (marker `long`), at smoke and paper scale always.

Protocol (all scales): the training labels are corrupted once (partial_labels at level
p = 0.15 / (1 - 1/K): each label is redrawn uniformly over the K classes with probability p, so
that an expected 15% of the labels are wrong, Nakkiran et al.'s "label noise 15%", whose noisy
label is always a wrong one); the test labels stay clean. Every width trains the same budget with
a constant learning rate (lr_decay 1), stop_at_fit and the stall stop off; its *final* training
error (on the noisy labels it trained on) and final test error are read, never the best one.
Each width starts from a fresh random initialization (no weight reuse).

- cpu (`--long`): mlp1x512 with 2 ... 512 hidden units (width multiplier units/512) on Belkin et
  al.'s n = 4,000 MNIST digits (mnist5k's whole training split; 4,000 class-balanced ones of
  another --dataset), the paper harness's SGD (lr 0.01, momentum 0.9, batch 128, cross-entropy),
  1,000 epochs. Belkin et al.'s interpolation threshold, where the parameter count
  H(d + 1) + (H + 1)K reaches nK, is H = 50 (d = 784, K = 10). Where we differ from them (as
  recalled from their appendix, unconfirmed against the text: squared loss, SGD with momentum
  0.95, step size decayed 10% every 500 epochs, up to 6,000 epochs, no added label noise, weights
  of a smaller network reused to initialize the next below the threshold): we train with
  cross-entropy and random initialization at every width, as Nakkiran et al. do, because that is
  the harness's one loss and the setting in which model-wise double descent is claimed to be
  generic; and we add label noise, which Nakkiran et al. show is what makes the peak pronounced.
  Cross-entropy needs only a correct argmax, not exact targets, so our training error may reach
  0 below H = 50: the rule below locates the peak relative to the measured interpolation width,
  not to 50.
- paper (`--gpu`): Nakkiran et al.'s Fig. 1 family, resnet18 (pre-activation ResNet18 with k, 2k,
  4k, 8k channels) at k = 1 ... 64 on CIFAR-10 (50,000 images), Adam at lr 1e-4, batch 128,
  random 28x28 crops (they also flip horizontally, which the harness does not). They train 4,000
  epochs; the suite trains 300 (about 3 GPU-hours for the 12 widths at an estimated 2-4 s an
  epoch, unmeasured): by their Fig. 2 (epochs x width; as recalled) the model-wise peak is
  already there after a few hundred epochs. A longer budget is a change of SWEEPS["paper"].
- smoke: 3 widths, 200 digits, 60 epochs: plumbing only (a smoke rejection is inconclusive).

Seeds: the scale's (cpu 3, paper 1, smoke 1); every width trains every seed.

Decision rule, written before any point of the sweep was measured (two single-width timing runs,
48 and 512 hidden units for 100 epochs, had been run to size the budget; they ended at train error
0.0015 and 0). Per width w: e(w) = mean over seeds of the final test error, t(w) = mean over seeds
of the final training error. Then
- the interpolation width w_fit = the smallest width with t(w) <= 0.01 (train error at most one
  point: "reaches zero" for a constant-lr SGD that jitters around a fit); none: H0 stands;
- the peak w_peak = the width of the largest e(w) among the widths within a factor 2 of w_fit,
  w_fit / 2 <= w <= 2 w_fit (the narrower one on a tie).
H0 ("test error does not rise to a peak near the interpolation width and fall again") is rejected,
the claim reproduces, when all of:
  (a) w_fit exists;
  (b) the peak is a rise: some narrower width tests better by at least X,
      e(w_peak) - min_{w < w_peak} e(w) >= X;
  (c) the second descent: the widest network tests better than the peak by at least X,
      e(w_peak) - e(w_max) >= X;
with X = 0.02 (two points of test error). Why 2 points: the standard error of one test error on
1,000 test digits is about 1.1 points at e = 0.15 (binomial), so of a 3-seed mean about 0.65
(seeds also differ in init and noise draw; the test set is shared by all widths, which makes the
differences less noisy than that); 2 points is about three standard errors, so a rise or fall
this large is not seed noise, while Belkin et al.'s and Nakkiran et al.'s peaks are several times
larger. At paper scale one seed on 10,000 test images has a standard error of about 0.45 points
at e = 0.3: 2 points is over four.

(Amended once, still before the sweep was measured: the first version took the peak as the largest
e(w) over all widths and required it within 2x of w_fit. The underfitting end of the curve, a
network of 2 hidden units, can win that maximum (a made-up curve in tests/test_dd_claim.py did;
at smoke scale 2 units tested at 0.72 error), which would reject the claim for the wrong reason:
the classical U starts high. The peak is now the maximum within 2x of w_fit, and (b) asks that it
stand above a narrower width.) One more timing run finished after the amendment was written: 16
hidden units, seed 0, the full 1,000 epochs: train error 0.0002, test error 0.34. It is one point
of the sweep, seen after the rule and not used to set it.

Measured once, after the rule (cpu, --long, 3 seeds, 2-core Intel Xeon, 2026-11-30; 36 runs, 6,354 s
of training on one core, most of it at low priority beside other work): reproduced. Mean final test
error by hidden units 2: 0.484, 4: 0.318, 8: 0.376, 12: 0.323, 16: 0.320, 24: 0.256, 32: 0.237,
48: 0.200, 64: 0.183, 128: 0.156, 256: 0.136, 512: 0.124; train error 0.453, 0.223, 0.059, 0.004,
then 0.0003 and 0 from 24 units on. w_fit = 12 units, the peak at 8 (0.058 above 4 units), the
widest 0.251 below the peak. With cross-entropy the network interpolates at 12 units, far below
Belkin et al.'s H = 50 for the squared loss.
"""
from dataclasses import dataclass

import numpy as np
import pytest

from rethinkbench.suite.evidence import ClaimInfo, format_values
from rethinkbench.suite.figspecs import xy

from known_failures import known_failure

NOISE = 0.15        # expected fraction of wrong training labels (Nakkiran et al., Fig. 1)
FIT_ERROR = 0.01    # training error that counts as "reached zero" (decided before measuring)
MARGIN = 0.02       # X: the least rise to the peak and the least fall after it (test error)


@dataclass(frozen=True)
class Sweep:
    model: str
    units: tuple          # hidden units (mlp) or k, the first stage's channels (resnet18)
    base: int             # units at width multiplier 1
    n_train: int | None   # training examples (None: the whole training set)
    epochs: int
    extra: tuple = ()     # further RunConfig overrides, as (name, value) pairs

    def width(self, units: int) -> float:
        return units / self.base


SWEEPS = {
    "smoke": Sweep("mlp1x512", (2, 8, 32), 512, 200, 60),
    "cpu": Sweep("mlp1x512", (2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512), 512, 4000, 1000),
    "paper": Sweep("resnet18", (1, 2, 4, 6, 8, 10, 12, 16, 24, 32, 48, 64), 64, None, 300,
                   (("optimizer", "adam"), ("lr", 1e-4), ("random_crop", True))),
}
# What --long costs (items.py puts it in the skip reason). Timed on the 2-core Intel Xeon, one
# thread per run, with other work on the machine: 100 epochs took 10.2 s at 48 hidden units and
# 22.6 s at 512 (so about 89 ms + 0.27 ms per unit an epoch, 68 minutes for the 36 runs), and the
# full 1,000 epochs took 173 s at 16 units under heavier load (1.9x that pace: about 2 h). The
# sweep is one test item, so its runs train one after another in one process whatever -n is.
CPU_COST = ("36 runs, 12 widths x 3 seeds x 1,000 epochs, in one test item: about 70 minutes on "
            "one core, up to 2 h on a busy machine")

DOUBLE_DESCENT = ClaimInfo(
    id="DD-model-wise",
    title="Model-wise double descent: test error peaks where the network first fits its noisy "
          "labels, and falls again for wider networks",
    statement="With label noise on the training set and training long without early stopping, test "
              "error as a function of width rises to a peak near the smallest width that fits the "
              "training set (the interpolation threshold) and decreases again beyond it.",
    source="Nakkiran, Kaplun, Bansal, Yang, Barak & Sutskever 2019, Deep double descent "
           "(ICLR 2020), Fig. 1; Belkin, Hsu, Ma & Mandal 2019, Reconciling modern machine learning "
           "practice and the classical bias-variance trade-off (PNAS), Fig. 3",
    paper="Nakkiran et al. Fig. 1: ResNet18 widths k = 1-64 on CIFAR-10 with 15% label noise, Adam "
          "lr 1e-4, 4k epochs: test error peaks near the k where train error reaches 0 (about "
          "k = 10-15, read from the figure, unconfirmed) and falls again up to k = 64. Belkin et "
          "al. Fig. 3: one hidden layer on n = 4,000 MNIST digits, peak at the interpolation "
          "threshold, H(d+1) + (H+1)K = nK, i.e. H = 50 hidden units.",
    paper_specific="a width sweep sized to the interpolation threshold of the papers' networks (a "
                   "one-hidden-layer MLP, ResNet18) on n = 4,000 digits or CIFAR-10",
)


def noise_level(num_classes: int) -> float:
    """partial_labels' level p such that an expected NOISE of the labels end up wrong."""
    return NOISE / (1 - 1 / num_classes)


def decide(units, test_err, train_err, margin=MARGIN, fit_error=FIT_ERROR) -> dict:
    """The decision rule of the module docstring on per-width mean errors (lists in width order)."""
    w_fit = next((w for w, t in zip(units, train_err) if t <= fit_error), None)
    if w_fit is None:
        return dict(w_fit=None, w_peak=None, rise=float("nan"), fall=float("nan"), ok=False)
    near = [i for i, w in enumerate(units) if w_fit / 2 <= w <= 2 * w_fit]
    i_peak = max(near, key=lambda i: (test_err[i], -i))   # the narrower width on a tie
    e_peak = test_err[i_peak]
    rise = e_peak - min(test_err[:i_peak]) if i_peak > 0 else 0.0
    fall = e_peak - test_err[-1]
    ok = rise >= margin and fall >= margin
    return dict(w_fit=w_fit, w_peak=units[i_peak], rise=float(rise), fall=float(fall), ok=ok)


@pytest.mark.claim(DOUBLE_DESCENT)
@pytest.mark.long(cost=CPU_COST)
def test_model_wise_double_descent(claim, run, scale, dataset, seeds):
    sweep = SWEEPS[scale.name]
    level = noise_level(dataset.num_classes)
    common = dict(model=sweep.model, n_train=sweep.n_train, max_epochs=sweep.epochs,
                  corruption="partial_labels", level=level, stop_at_fit=False, stall_epochs=None,
                  lr_decay=1.0, **dict(sweep.extra))
    results = run.many([dict(common, width=sweep.width(u), seed=s) for u in sweep.units for s in seeds])
    by_width = {u: results[i * len(seeds):(i + 1) * len(seeds)] for i, u in enumerate(sweep.units)}
    test = {u: [1 - r.final_test_acc for r in rs] for u, rs in by_width.items()}
    train = {u: [1 - r.final_train_acc for r in rs] for u, rs in by_width.items()}
    units = list(sweep.units)
    e = [float(np.mean(test[u])) for u in units]
    t = [float(np.mean(train[u])) for u in units]
    d = decide(units, e, t)
    what = "hidden units" if sweep.model.startswith("mlp") else "k (channels of the first stage)"
    claim.params.update(model=sweep.model, noise=NOISE, epochs=sweep.epochs, widths=units)
    claim.test = (f"within 2x of the smallest width with train error <= {FIT_ERROR:g}, test error "
                  f"({what}) peaks >= {MARGIN:g} above a narrower width and >= {MARGIN:g} above the "
                  f"widest")
    for u in units:
        claim.measure(f"test_error_w{u}", test[u], tolerance={"abs": 0.03})
        claim.measure(f"train_error_w{u}", train[u], tolerance={"abs": 0.03})
    belkin = scale.name == "cpu" and sweep.model == "mlp1x512"
    claim.measure("interpolation_width", d["w_fit"] if d["w_fit"] is not None else float("nan"),
                  unit=f" {what}", paper=50 if belkin else None,
                  paper_note="Belkin et al.: H(d+1) + (H+1)K = nK at n = 4,000 (squared loss)" if belkin
                  else None, tolerance={"rel": 1.0})
    claim.measure("peak_width", d["w_peak"] if d["w_peak"] is not None else float("nan"), unit=f" {what}",
                  tolerance={"rel": 1.0})
    claim.measure("rise_to_peak", d["rise"], tolerance={"abs": 0.03})
    claim.measure("fall_after_peak", d["fall"], tolerance={"abs": 0.03})
    claim.figure(xy({"test error": (units, e), "train error": (units, t)}, logx=True,
                    title=f"Model-wise double descent: {sweep.model}, {NOISE:.0%} label noise, "
                          f"{sweep.epochs} epochs", xlabel=what, ylabel="error"))
    curve = ", ".join(f"{u}: {x:.3f}/{y:.3f}" for u, x, y in zip(units, e, t))
    claim.check(d["ok"],
                f"{sweep.model}: interpolation width {d['w_fit']} (train error <= {FIT_ERROR:g}), "
                f"test-error peak within 2x of it at {d['w_peak']}, rise {d['rise']:.3f} and "
                f"fall {d['fall']:.3f} (need >= {MARGIN:g} each); test/train error by width "
                f"(mean of {len(seeds)} seed(s)): {curve}; widest width's test errors "
                f"{format_values(test[units[-1]])}",
                known_failure=known_failure(DOUBLE_DESCENT.id, scale, dataset, sweep.model))

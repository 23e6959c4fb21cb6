"""Dziugaite & Roy (2017): an optimized PAC-Bayes bound on a stochastic network around the SGD
solution is non-vacuous for true labels and vacuous for random labels
(rethinkbench/measures/pacbayes.py has the formulas and the bound optimizer).

Runs: the session's dataset made binary, label < K/2 -> 0 and the rest -> 1 (mnist5k: digits 0-4
vs 5-9, the paper's split; cifar10 at paper scale: airplane..deer vs dog..truck, not the paper's
data), trained as "custom:dr-binary-<dataset>" with the scale's defaults for the model (cpu:
mlp1x512, one hidden layer of 512, built with num_classes = 2: two logits, where the paper's T-600
is 784-600-1 with one; all 4,000 training digits; paper scale: all 50,000) on true labels and on
random labels, the scale's seeds, SGD until the training set is fitted (the harness's schedule:
lr 0.01, momentum 0.9, batch 128; the paper: 20 epochs at batch 100, 120 for random labels). Then,
per run, the bound of pacbayes.pac_bayes_bound: prior N(w0, lambda I) at the run's initialization,
posterior N(w, diag s) started at the trained weights, the paper's objective minimized by
RMSprop, lambda rounded to the grid c exp(-j/b) (b = 100, c = 0.1) with the union bound over j,
delta = 0.025, then the Monte Carlo training error, its sample-convergence bound (delta' = 0.01)
and the kl-inverse bound. Inputs are the harness's (per-image standardized), not the paper's
[0, 1] pixels: with [0, 1] pixels the same network took 3x the epochs to fit and moved twice as
far from its initialization (measured once, seed 0-2: distance 6.4 against 3.5).

Cost (BOUND below). The paper ran 200,000 RMSprop steps per bound (about 50x the SGD cost). At cpu
scale the whole claim, cold, took 61 s of CPU (63 s wall, -n 0, one thread, 2-core Xeon shared with
other work): the six runs (3 seeds x 2 label sets) trained in 28 s, the six bounds took about 25 s
(a warm session, runs from the cache, takes 34 s: the bounds are not cached). Per bound: 150 steps
of batch 100 (about 30 ms a step: each step touches all 403k posterior means and variances), the
variances at lr 1e-2 so that they move in so few steps,
the means at 1e-4, from init_uniform's start (s_i = lambda for every weight, lambda searched on
the grid), and 2 Monte Carlo passes over the training set (8,000 independent draws: the
sample-convergence slack is then ~0.01). Measured on seed 0, true labels, before the rule below
was fixed: the kl-inverse bound is 0.82 at this start, 0.75-0.77 after 200-250 steps and 0.56
after 1,500 (means at 1e-3): at 4,000 examples and this budget the bound is much looser than the
paper's 0.16 at 55,000. The means' 1e-4 (the paper: 1e-3) was chosen after the first full cpu
measurement, which had reproduced with 1e-3 (true-label bounds 0.84, 0.75, 0.80; q + sqrt(B_RE/2)
0.92, 0.80, 0.85; random 1.00 and 2.08, 1.97, 2.01): in 150 steps RMSprop's normalized steps at
1e-3 disturb the means (seed 0: the mean network's training error rose to 0.057, the bound was
0.85), at 1e-4 they do not (0.005, bound 0.74), so the bound is tighter and less noisy.

Decision rule (H0: the bound does not tell the two label sets apart), fixed after the seed-0
true-label numbers above and before any optimized random-label bound was computed (one
unoptimized one had been seen: at the paper's start, s = |w|, seed 0, sqrt(B_RE / 2) = 11.6):

- Validity, every run: the posterior's Monte Carlo test error <= its kl-inverse bound (it bounds
  that error with probability >= 0.965; a violation would point to the implementation).
- True labels, every seed: non-vacuous, V = q + sqrt(B_RE / 2) < 1, where q is the
  sample-convergence bound on the posterior's training error and B_RE the budget of the paper's
  Eq. 5: the McAllester form of the same bound (their Eq. 2, >= the kl-inverse bound). Not "the
  kl-inverse bound < 1", which the issue states: kl^-1(q, C) < 1 for every finite C, so that
  could not fail.
- Random labels, every seed: vacuous, V >= 1. The paper's R-600 entry (1.352) is sqrt(B_RE / 2)
  alone, their figure for a vacuous bound; V adds the training error to it (0.112 there).
The kl-inverse bound below 0.5 (better than a coin on this balanced task) is recorded, not
decided. At smoke scale (200 digits, 20 steps) the rule is applied as everywhere and a rejection
is inconclusive.

A plugin --model whose network is not a chain of Linear and ReLU layers with 2 outputs (what the
per-example sampling supports, see pacbayes.py) is skipped with the reason.
"""
import math

import numpy as np
import pytest

from rethinkbench.base.errors import UsageError
from rethinkbench.base.threads import run_threads
from rethinkbench.engine.train import initial_model, prepare_dataset
from rethinkbench.harness.data import Dataset
from rethinkbench.measures import pacbayes as PB
from rethinkbench.suite.evidence import ClaimInfo, format_values
from rethinkbench.suite.figspecs import bars, xy

from known_failures import known_failure

LABELS = ("true_labels", "random_labels")
# Bound optimization per scale (see the module docstring for the cpu choice): RMSprop steps, the
# means' and the variances' learning rates, the step at which both drop 10x, Monte Carlo passes.
BOUND = {
    "smoke": dict(steps=20, lr=1e-4, scale_lr=1e-2, lr_drop_step=None, passes=1),
    "cpu": dict(steps=150, lr=1e-4, scale_lr=1e-2, lr_drop_step=None, passes=2),
    # The paper's schedule (150,000 steps at 1e-3, 50,000 at 1e-4), for true and random labels alike.
    "paper": dict(steps=200_000, lr=1e-3, scale_lr=1e-3, lr_drop_step=150_000, passes=20),
}

INFO = ClaimInfo(
    id="DR-pacbayes",
    title="An optimized PAC-Bayes bound is non-vacuous for true labels, vacuous for random labels",
    statement="Optimizing a PAC-Bayes bound over a Gaussian posterior around the SGD solution (prior at "
              "the initialization) gives a non-vacuous bound on the stochastic network's error for a "
              "network fitted to true labels, and a vacuous one for a network fitted to random labels.",
    source="Dziugaite & Roy 2017, Computing nonvacuous generalization bounds for deep (stochastic) neural "
           "networks with many more parameters than training data (UAI), Table 1",
    paper="Binary MNIST (0-4 vs 5-9, 55,000 training digits), delta = 0.025, delta' = 0.01. T-600: SGD "
          "test error 0.018, stochastic net test error 0.034, bound 0.161, KL 5,144; bounds 0.161-0.223 "
          "over six architectures. R-600 (random labels): SGD train 0.007 / test 0.508, stochastic net "
          "train 0.112 / test 0.503, KL 201,131, sqrt(B_RE/2) = 1.352 (vacuous). Read from a transcription "
          "of the arXiv v2 Table 1, not the PDF itself.",
)


def binary(ds: Dataset) -> Dataset:
    """`ds` with labels < K/2 -> 0 and the others -> 1 (mnist: 0-4 vs 5-9)."""
    half = ds.num_classes // 2
    if half < 1:
        raise UsageError(f"dataset {ds.name!r} has {ds.num_classes} class: a binary split needs two or more")
    return Dataset(ds.x_train, (ds.y_train >= half).long(), ds.x_test, (ds.y_test >= half).long(),
                   num_classes=2, name=f"{ds.name}-binary")


def bound_of(result, data: Dataset, device: str, setting: dict):
    cfg = result.config
    ds = prepare_dataset(cfg, data, None, device)     # the run's own subset and (corrupted) labels
    init = initial_model(cfg, ds.in_shape, 2).to(device)
    with run_threads():   # one intra-op thread, as every run trains: the numbers do not depend on -n
        return PB.pac_bayes_bound(result.model.to(device).eval(), init, ds.x_train, ds.y_train, ds.x_test,
                                  ds.y_test, steps=setting["steps"], passes=setting["passes"], lr=setting["lr"],
                                  scale_lr=setting["scale_lr"], lr_drop_step=setting["lr_drop_step"],
                                  seed=cfg.seed, record_every=max(1, setting["steps"] // 50))


@pytest.mark.claim(INFO)
@pytest.mark.models(default=["mlp1x512"])
def test_pac_bayes_bound(claim, run, scale, dataset, device, seeds, model):
    """Rule in the module docstring."""
    data = binary(dataset)
    net = initial_model(run.config(model=model, seed=seeds[0]), dataset.in_shape, 2)
    try:   # an unsupported network is skipped before anything is trained for it
        PB.GaussianPosterior(net, net, data.x_train[:1])
    except UsageError as exc:
        pytest.skip(f"{model}: the PAC-Bayes bound is not supported for this network: {exc}")
    setting = BOUND.get(scale.name, BOUND["cpu"])
    name = f"custom:dr-binary-{dataset.name}"
    runs = {c: run.many([dict(model=model, corruption=c, seed=s, data=data, dataset=name, keep_model=True)
                         for s in seeds]) for c in LABELS}
    if any(r.provenance.get("plan") for rs in runs.values() for r in rs):
        return   # --plan: the runs are listed; nothing was trained to bound
    out = {c: [bound_of(r, data, device, setting) for r in rs] for c, rs in runs.items()}
    v = {c: [b.train_error_upper + b.mcallester_term for b in bs] for c, bs in out.items()}

    claim.test = ("per seed: test error of Q <= kl-inverse bound (both label sets); true labels "
                  "q + sqrt(B_RE/2) < 1; random labels q + sqrt(B_RE/2) >= 1")
    claim.params.update({k: v_ for k, v_ in setting.items() if v_ is not None})
    paper = {"true_labels": dict(bound=0.161, test_error=0.034, train_error=0.028, kl=5144, sgd_test=0.018),
             "random_labels": dict(test_error=0.503, train_error=0.112, kl=201131, mcallester_term=1.352,
                                   sgd_test=0.508, sgd_train=0.007)}
    for c, bs in out.items():
        p = paper[c]
        claim.measure(f"bound_{c}", [b.bound for b in bs], paper=p.get("bound"), tolerance={"abs": 0.05})
        claim.measure(f"mcallester_{c}", v[c], tolerance={"abs": 0.05})
        claim.measure(f"sqrt_budget_{c}", [b.mcallester_term for b in bs], paper=p.get("mcallester_term"),
                      tolerance={"abs": 0.05})
        claim.measure(f"snn_test_error_{c}", [b.test_error for b in bs], paper=p["test_error"],
                      tolerance={"abs": 0.03})
        claim.measure(f"snn_train_error_{c}", [b.train_error for b in bs], paper=p["train_error"],
                      tolerance={"abs": 0.03})
        claim.measure(f"kl_{c}", [b.kl for b in bs], paper=p["kl"], tolerance={"rel": 0.25})
        claim.measure(f"prior_variance_{c}", [b.prior_variance for b in bs], tolerance={"rel": 0.5})
        claim.measure(f"sgd_test_error_{c}", [1 - r.final_test_acc for r in runs[c]], paper=p["sgd_test"],
                      tolerance={"abs": 0.02})
        claim.measure(f"sgd_train_error_{c}", [1 - r.final_train_acc for r in runs[c]], paper=p.get("sgd_train"),
                      tolerance={"abs": 0.01})
    claim.figure(bars({f"{c}: {what}": float(np.mean([getattr(b, attr) for b in out[c]]))
                       for c in LABELS for what, attr in (("test error of Q", "test_error"),
                                                          ("kl-inverse bound", "bound"))}
                      | {f"{c}: q + sqrt(B_RE/2)": float(np.mean(v[c])) for c in LABELS},
                      title=f"{model}, binary {dataset.name}: bound vs test error (mean over {len(seeds)} seeds)",
                      xlabel="", ylabel="error"))
    claim.figure(xy({f"{c}, seed {seeds[0]}": ([h["step"] for h in out[c][0].history],
                                              [h["objective"] for h in out[c][0].history]) for c in LABELS},
                    title=f"{model}: the bound objective (surrogate loss + sqrt(B_RE/2)) over RMSprop steps",
                    xlabel="step", ylabel="objective (one minibatch)"))

    bad = [f"{c} seed {s}: test error of Q {b.test_error:.4f} > bound {b.bound:.4f}"
           for c in LABELS for s, b in zip(seeds, out[c]) if not b.test_error <= b.bound]
    bad += [f"true labels seed {s}: q + sqrt(B_RE/2) = {x:.4f} >= 1 (vacuous)"
            for s, x in zip(seeds, v["true_labels"]) if not x < 1]
    bad += [f"random labels seed {s}: q + sqrt(B_RE/2) = {x:.4f} < 1 (non-vacuous)"
            for s, x in zip(seeds, v["random_labels"]) if not x >= 1]
    summary = "; ".join(f"{c}: bound {format_values([b.bound for b in out[c]])}, q + sqrt(B_RE/2) "
                        f"{format_values(v[c])}, test error of Q {format_values([b.test_error for b in out[c]])}, "
                        f"KL {format_values([b.kl for b in out[c]])}" for c in LABELS)
    claim.check(not bad and all(math.isfinite(x) for x in v["true_labels"] + v["random_labels"]),
                f"{model}: {'; '.join(bad) or 'all held'} ({summary})",
                known_failure=known_failure(INFO.id, scale, dataset, model))

"""Arpit, Jastrzębski, Ballas, Krueger et al. (ICML 2017), "A Closer Look at Memorization in Deep
Networks": real data is learned pattern-first, noise by memorization.

Their claims are directions (few numbers outside figures), so these tests assert directions. cpu
scale: mnist5k with the harness's MLP 1x512 (their MNIST nets were 2x4096 MLPs; narrower here to fit
two cores) and small Inception at 1/8 width on 500 digits where a CNN is needed; Zhang et al.'s
optimizer settings. The critical sample ratio at cpu scale uses the MLP (the trained networks must
be kept, and retraining conv nets for it would cost minutes). paper scale: CIFAR-10 with small AlexNet / Inception.
"""
import numpy as np
import pytest

from rethinkbench.suite import protocols
from rethinkbench.suite.evidence import ClaimInfo, spearman
from rethinkbench.suite.figspecs import curves, xy

from known_failures import known_failure

# --------------------------------------------------------------------------- A-patterns-first

PATTERNS_FIRST = ClaimInfo(
    id="A-patterns-first",
    title="Clean examples are fitted before noisy ones",
    statement="With partly random labels, the correctly labelled examples are fitted before the "
              "mislabelled ones, and validation accuracy peaks before the noise is memorized, then falls.",
    source="Arpit et al. 2017, §4 (Fig. 7) and §5",
    paper="Directions only: clean-subset accuracy rises first; validation accuracy peaks early and "
          "declines as noisy examples are memorized.",
)


def first_epoch(history, field, threshold):
    for h in history:
        if h.get(field) is not None and h[field] >= threshold:
            return h["epoch"]
    return None


@pytest.mark.claim(PATTERNS_FIRST)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
@pytest.mark.parametrize("level", [0.4, 0.8])
def test_clean_examples_fitted_first(claim, run, seeds, model, level):
    """H0: for some seed, the clean subset does not reach 99% training accuracy strictly before
    the noisy subset does, or validation (clean test) accuracy does not peak before the noisy
    subset is fitted, or the final validation accuracy is not below the peak."""
    res = run.many(protocols.label_noise(model, level, seeds))
    rows, bad = [], []
    for r in res:
        h = r.history
        e_clean = first_epoch(h, "clean_acc", 0.99)
        e_noisy = first_epoch(h, "noisy_acc", 0.99)
        peak = max(h, key=lambda x: x["test_acc"])
        drop = peak["test_acc"] - h[-1]["test_acc"]
        rows.append((e_clean, e_noisy, peak["epoch"], drop))
        if e_clean is None or e_noisy is None or not e_clean < e_noisy:
            bad.append(f"seed {r.config.seed}: clean fitted at epoch {e_clean}, noisy at {e_noisy}")
        elif not peak["epoch"] < e_noisy or drop <= 0:
            bad.append(f"seed {r.config.seed}: validation peak at epoch {peak['epoch']} "
                       f"({peak['test_acc']:.4f}), noisy fitted at {e_noisy}, final drop {drop:+.4f}")
    claim.test = ("per seed: epoch(clean ≥ 99%) < epoch(noisy ≥ 99%); peak-validation epoch < "
                  "epoch(noisy ≥ 99%); final validation accuracy < peak")
    nan = lambda v: float("nan") if v is None else v
    claim.measure("epoch_clean_99", [nan(r[0]) for r in rows], unit=" ep", tolerance={"rel": 0.5})
    claim.measure("epoch_noisy_99", [nan(r[1]) for r in rows], unit=" ep", tolerance={"rel": 0.5})
    claim.measure("epoch_val_peak", [r[2] for r in rows], unit=" ep")
    claim.measure("val_drop_after_peak", [r[3] for r in rows], tolerance={"abs": 0.05})
    claim.figure({"kind": "line", "title": f"{model}, p={level}: clean vs noisy subsets, seed "
                                           f"{res[0].config.seed}", "xlabel": "epoch", "ylabel": "accuracy",
                  "logy": False, "series": [s for f in ("clean_acc", "noisy_acc", "test_acc")
                                            for s in _series(res[0], f)]})
    claim.check(not bad, f"{model}, p={level}: " + "; ".join(bad))


def _series(res, field):
    label = {"clean_acc": "clean subset (train)", "noisy_acc": "noisy subset (train)",
             "test_acc": "validation (clean test)"}[field]
    return curves({label: res}, field, x="epoch")["series"]


# --------------------------------------------------------------------------- A-noise-slower

NOISE_SLOWER = ClaimInfo(
    id="A-noise-slower",
    title="Real data is fitted faster than noise",
    statement="Real data is fitted faster than random labels, and random inputs faster than random labels.",
    source="Arpit et al. 2017, §3 (Fig. 1)",
    paper="Directions only (Fig. 1: MNIST and CIFAR-10 MLPs/CNNs).",
)


@pytest.mark.claim(NOISE_SLOWER)
@pytest.mark.models(default=["mlp1x512", "inception_small"], paper=["alexnet_small", "inception_small"])
@pytest.mark.parametrize("faster", ["true_labels", "gaussian"])
def test_noise_is_slower(claim, run, scale, seeds, model, faster):
    """H0: steps-to-fit on `faster` is not stochastically smaller than on random labels. One-sided
    exact Mann-Whitney U test over seeds, rejected at p ≤ 0.05. Shares the Z-F1a runs."""
    a = run.many(protocols.randomization(model, faster, seeds))
    b = run.many(protocols.randomization(model, "random_labels", seeds))
    ok, message = protocols.fits_faster(claim, model, faster, "random_labels", a, b)
    claim.check(ok, message,
                known_failure=known_failure(NOISE_SLOWER.id, scale, run.config(model=model).dataset,
                                            f"{model}-{faster}"))


# --------------------------------------------------------------------------- A-easy-examples

EASY = ClaimInfo(
    id="A-easy-examples",
    title="Real data has consistently easy and hard examples; noise does not",
    statement="After one epoch from many random initializations, per-example error rates on real "
              "data are spread (some examples consistently easy, some hard), while on random data "
              "they look like binomial noise.",
    source="Arpit et al. 2017, §3.1 (Fig. 2)",
    paper="Fig. 2 (CIFAR-10, 100 runs): real-data per-example misclassification is bimodal-ish; "
          "random data matches a binomial.",
)


@pytest.mark.claim(EASY)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
def test_easy_and_hard_examples(claim, run, scale, dataset, model):
    """Per-example error counts over S one-epoch runs (S = 20 at cpu, 100 at paper scale; the data
    fixed, init and batch order varying). Dispersion index D = var(counts) / (S q (1−q)), which is 1
    under H0 "every example equally hard" (Binomial(S, q)). Decision: on real data H0 is rejected
    (χ² goodness of fit against Binomial(S, q̂), p ≤ 1e-6, and D > 2); on Gaussian inputs the counts
    look binomial: D within [0.7, 1.5]. The χ² p-value on Gaussian inputs is recorded but does not
    decide: with thousands of examples it rejects any small departure from an exact binomial.
    Random labels on real images are recorded only (the issue states the claim for random inputs;
    their inputs keep real structure, so examples can be consistently easy or hard there too)."""
    from rethinkbench.harness.corruptions import corrupt
    from rethinkbench.measures.memorization import dispersion

    n_runs = EASY_RUNS.get(scale.name, 20)
    n_train = run.config(model=model).n_train
    out, bad = {}, []
    for kind in ("true_labels", "random_labels", "gaussian"):
        data = corrupt(dataset, kind, seed=0)   # one fixed dataset; seeds vary init and order only
        res = run.many([dict(model=model, seed=s, max_epochs=1, stop_at_fit=False, record_per_example=True,
                             data=data, n_train=n_train, dataset=f"custom:easy-{dataset.name}-{kind}")
                        for s in range(n_runs)])
        correct = np.array([r.per_example_correct for r in res])
        d = dispersion(correct)
        d["errors"] = (len(res) - correct.sum(0)).astype(int).tolist()
        out[kind] = d
        claim.measure(f"dispersion_{kind}", d["dispersion_index"], tolerance={"rel": 0.3})
        claim.measure(f"chi2_p_{kind}", d["chi2_p"])
        claim.measure(f"mean_error_{kind}", d["mean_error"])
    if not (out["true_labels"]["chi2_p"] <= 1e-6 and out["true_labels"]["dispersion_index"] > 2):
        bad.append(f"real data: D = {out['true_labels']['dispersion_index']:.2f}, χ² p = {out['true_labels']['chi2_p']:.2g}")
    if not 0.7 <= out["gaussian"]["dispersion_index"] <= 1.5:
        bad.append(f"gaussian: D = {out['gaussian']['dispersion_index']:.2f} outside [0.7, 1.5]")
    claim.test = "real: χ² vs Binomial p ≤ 1e-6 and D > 2; Gaussian inputs: 0.7 ≤ D ≤ 1.5"
    claim.figure({"kind": "hist", "title": f"errors per example over {n_runs} one-epoch runs ({model})",
                  "xlabel": f"times misclassified (of {n_runs})", "ylabel": "examples",
                  "series": [{"label": k, "values": out[k]["errors"]} for k in out],
                  "bins": n_runs + 1})
    claim.check(not bad, "; ".join(bad))


EASY_RUNS = {"smoke": 8, "cpu": 20, "paper": 100}


# --------------------------------------------------------------------------- A-capacity-time

CAPACITY = ClaimInfo(
    id="A-capacity-time",
    title="Time to fit grows with data size, faster for noise",
    statement="The time needed to fit the training set grows with its size, and grows much faster "
              "for noisy data than for real data.",
    source="Arpit et al. 2017, §4 (Fig. 4)",
    paper="Fig. 4: epochs to fit vs training-set size for several noise levels; steeper with noise.",
)
SIZES = protocols.CAPACITY_SIZES
NOISE = protocols.CAPACITY_NOISE


@pytest.mark.claim(CAPACITY)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
def test_time_to_fit_grows_with_size(claim, run, scale, dataset, seeds, model):
    """H0 (a): for some noise level, steps-to-fit shows no positive Spearman trend in n (one-sided,
    p ≤ 0.05 over all (n, seed) runs). H0 (b): the growth factor steps(n_max)/steps(n_min) at noise
    0.8 is not larger than at noise 0."""
    sizes = SIZES.get(scale.name, SIZES["cpu"])
    steps, growth, bad = {}, {}, []
    full = run.config(model=model).n_train or dataset.n_train
    for p in NOISE:
        for n in sizes:
            # The full-size runs are the Fig. 1b runs (n_train None = all): shared through the cache.
            res = run.many(protocols.capacity(model, p, n, full, seeds))
            if not all(r.fitted for r in res):
                bad.append(f"p={p}, n={n}: not fitted within the budget")
            steps[(p, n)] = [r.steps_to_fit or r.history[-1]["step"] for r in res]
        xs = [n for n in sizes for _ in seeds]
        ys = [v for n in sizes for v in steps[(p, n)]]
        rho, pval = spearman(xs, ys)
        growth[p] = float(np.mean(steps[(p, sizes[-1])]) / np.mean(steps[(p, sizes[0])]))
        claim.measure(f"growth_p{p:g}", growth[p], unit="x", tolerance={"rel": 0.35})
        claim.measure(f"spearman_p{p:g}", rho)
        if pval > 0.05:
            bad.append(f"p={p}: Spearman rho {rho:.2f}, p-value {pval:.3f}")
    if not growth[0.8] > growth[0.0]:
        bad.append(f"growth at p=0.8 {growth[0.8]:.2f}x ≤ at p=0 {growth[0.0]:.2f}x")
    claim.test = "Spearman trend of steps-to-fit in n at every noise level (p ≤ 0.05); growth(p=0.8) > growth(p=0)"
    claim.figure(xy({f"noise {p}": (list(sizes), [float(np.mean(steps[(p, n)])) for n in sizes]) for p in NOISE},
                    title=f"{model}: steps to fit vs training-set size", xlabel="n (training examples)",
                    ylabel="steps to fit"))
    claim.check(not bad, f"{model}: " + "; ".join(bad))


# --------------------------------------------------------------------------- A-csr

CSR = ClaimInfo(
    id="A-csr",
    title="Networks trained on noise have more critical samples",
    statement="The critical sample ratio — the fraction of validation points with an adversarial "
              "example (a class change) within a small ℓ∞ ball — is much higher for networks "
              "trained on noise than on real data.",
    source="Arpit et al. 2017, §4.1 (Fig. 8)",
    paper="Fig. 8 (CIFAR-10 CNN, r = 0.3/255): CSR grows with label noise; no single number.",
)
RADII_255 = (0.3, 3.0, 10.0)   # in 1/255 pixel units; 0.3/255 is the paper's


@pytest.mark.claim(CSR)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
def test_critical_sample_ratio(claim, run, dataset, scale, seeds, model):
    """CSR by the Langevin search (rethinkbench.measures.memorization.critical_sample_ratio) on the first
    300 test images (1,000 at paper scale), for the Z-F1a true-label and random-label networks. The
    radius is r/255 in pixel units, scaled to the per-image standardized inputs by the dataset's
    mean per-image pixel std. H0: CSR(random labels) ≤ CSR(true labels) at r = 0.3/255 (the
    paper's), means over seeds; larger radii are recorded for context."""
    from rethinkbench.measures.memorization import critical_sample_ratio

    n_val = 1000 if scale.name == "paper" else 300
    x = dataset.x_test[:n_val]
    pixel_std = float(dataset.x_train_raw.flatten(1).std(1).mean()) if dataset.x_train_raw is not None else 1.0
    csr = {}
    for kind in ("true_labels", "random_labels"):
        res = run.many([dict(model=model, corruption=kind, seed=s, keep_model=True) for s in seeds])
        for r255 in RADII_255:
            vals = [critical_sample_ratio(r.model, x.to(r.config.device), r255 / 255 / pixel_std, seed=r.config.seed)["csr"]
                    for r in res]
            csr[(kind, r255)] = vals
            claim.measure(f"csr_{kind}_r{r255:g}", vals, tolerance={"abs": 0.05})
    a, b = np.mean(csr[("random_labels", 0.3)]), np.mean(csr[("true_labels", 0.3)])
    claim.test = "mean CSR(random labels) > mean CSR(true labels) at r = 0.3/255"
    claim.figure(xy({k: (list(RADII_255), [float(np.mean(csr[(k, r)])) for r in RADII_255])
                     for k in ("true_labels", "random_labels")},
                    title=f"{model}: critical sample ratio vs radius", xlabel="radius (/255)", ylabel="CSR"))
    claim.check(a > b, f"{model}: CSR random labels {a:.4f} vs true labels {b:.4f} at r=0.3/255 "
                       f"(n={len(seeds)}, {n_val} points)",
                known_failure=known_failure(CSR.id, scale, dataset.name, model))

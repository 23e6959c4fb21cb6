"""What tells a memorizing network from a generalizing one: the norm-based measures of Bartlett,
Foster & Telgarsky (2017) and Neyshabur, Bhojanapalli, McAllester & Srebro (2017), computed on the
networks the Zhang et al. claims already train (rethinkbench/measures/margins.py, norms.py).

Runs: mlp1x512 at the label-corruption levels p = 0, 0.4 and 1 (protocols.MEASURE_LEVELS: the
Fig. 1b/1c runs of Z-F1b-slowdown / Z-F1c-testerr, widely spaced since a reproduction lost Bartlett
et al.'s order at p = 0.2), the scale's seeds, every network fitted to its (corrupted) training
labels. protocols.label_noise keeps those networks in the cache, so these claims add measuring,
not training. Every quantity is on the run's own training set, labels as trained.

Decision rules, written before any number was measured:

B-margin-separates. Per run: raw margins m_i = F(x_i)_y_i - max_{j != y_i} F(x_i)_j; normalized
margins m_i / (R_A ||X||_2 / n) with R_A the spectral complexity at reference M = 0 (R_A at M = the
initialization is measured and reported, not decided on). Separation of two runs = the AUC
P(margin of a p=0 example > margin of a p=1 example), ties half. H0 is rejected (the claim
reproduces) when, for every seed: (a) normalized margins separate, AUC >= 0.9; (b) raw margins do
not, AUC < 0.9; (c) the median normalized margin falls strictly from p = 0 to 0.4 to 1.

N-norms-vs-noise. Per run, with gamma the 5th percentile of its training margins: the l2,
l1-path, l2-path and spectral measures over gamma^2. The claim reproduces when every one of the
four measures is lower at p = 0 than at p = 1 for every seed (paired by seed). The p = 0.4 values
are recorded, not decided on. (The paper's second half, growth with the training-set size for
random labels, is not tested here.)

N-norms-grow-with-n (the A-capacity-time runs: mlp1x512 at n = 500, 1,000, 2,000 and 4,000
digits, protocols.capacity, networks kept). The paper's random labels are not trained at several
sizes here; the nearest are p = 0.8 (about 72% of labels wrong). The claim reproduces when, at
p = 0.8, each of the four measures rises with n: a one-sided Spearman test over all (n, seed) runs
rejects "no positive trend" at p-value <= 0.05, for every measure, and every run fitted. The
p = 0 trends are recorded, not decided (the paper's true-label curves grow more slowly).

B-lipschitz-grows (its own runs: mlp1x512 on true and on random labels with
RunConfig.track_spectral, which records the Lipschitz bound L = prod_i ||A_i||_sigma every epoch;
the scale's seeds, each trained to fit). growth = L(last epoch) / L(first epoch). The claim
reproduces when, for every seed, (a) L grows on both label sets (growth > 1) and (b) far more on
random labels: growth_random - 1 >= 2 (growth_true - 1). Written after the final L of the
B-margin-separates runs had been seen (about 3.6 true, 9.3 random), before any per-epoch value.
The paper's other half, that dividing by the margin neutralizes the growth, is recorded (L over
the median training margin, from the first epoch where that margin is positive) but not decided:
early in training the margins are negative, and we could fix no rule for "neutralizes" in advance.

A plugin --model whose network is not a chain of supported layers (measures/norms.py) is skipped
with the reason.
"""
import numpy as np
import pytest

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.train import initial_model
from rethinkbench.measures import margins as M
from rethinkbench.measures import norms as N
from rethinkbench.suite import protocols
from rethinkbench.suite.evidence import ClaimInfo, spearman
from rethinkbench.suite.figspecs import xy

from known_failures import known_failure
from measured import LEVELS, MEASURES, cdf, measure_run, measured_runs, not_lower, not_lower_summary

SEPARATES = 0.9          # the AUC that counts as "separates" (decided before measuring)

MARGINS = ClaimInfo(
    id="B-margin-separates",
    title="Spectrally normalized margins separate true from random labels; raw margins do not",
    statement="Raw training margins do not tell a network fitted to true labels from one fitted to "
              "random labels; margins divided by the spectral complexity R_A (times ||X||_2/n) do, and "
              "they fall with the label-corruption level.",
    source="Bartlett, Foster & Telgarsky 2017, Spectrally-normalized margin bounds for neural "
           "networks (NeurIPS), Figs. 2-3",
    paper="Directions only: AlexNet on cifar10 and mnist, true vs random labels (Fig. 2) and label "
          "corruption levels (Fig. 3): raw margin histograms overlap, normalized ones are separated "
          "and ordered by corruption. No numbers are given.",
)

NORMS = ClaimInfo(
    id="N-norms-vs-noise",
    title="Norm measures over the margin are lower for true labels than for random labels",
    statement="The l2 norm, l1-path norm, l2-path norm and spectral-norm measures, each over the "
              "squared 5th-percentile margin, are lower for a network fitted to true labels than for "
              "one fitted to random labels.",
    source="Neyshabur, Bhojanapalli, McAllester & Srebro 2017, Exploring generalization in deep "
           "learning (NeurIPS), §2.1, Fig. 1",
    paper="Directions only: VGG on cifar10 subsets, every measure lower for true labels at every "
          "training-set size (log-scale plots, no numbers). The measures' constants (4's, 2's, unit "
          "counts h_i) are as recalled from §2, unconfirmed; they cancel in this comparison.",
)

@pytest.mark.claim(MARGINS)
@pytest.mark.models(default=["mlp1x512"])
def test_normalized_margins_separate(claim, run, scale, dataset, data_root, seeds, model):
    """Rule in the module docstring (B-margin-separates)."""
    by = measured_runs(run, model, dataset, seeds, data_root)
    lo, hi = LEVELS[0], LEVELS[-1]
    auc_raw = [M.separation_auc(t["margins"], r["margins"]) for t, r in zip(by[lo], by[hi])]
    auc_norm = [M.separation_auc(t["normalized"], r["normalized"]) for t, r in zip(by[lo], by[hi])]
    auc_init = [M.separation_auc(t["normalized_init"], r["normalized_init"]) for t, r in zip(by[lo], by[hi])]
    med = {p: [float(np.median(d["normalized"])) for d in by[p]] for p in LEVELS}
    ordered = [all(med[a][i] > med[b][i] for a, b in zip(LEVELS, LEVELS[1:])) for i in range(len(seeds))]
    claim.test = (f"per seed: AUC(normalized, p={lo:g} vs {hi:g}) >= {SEPARATES}, AUC(raw) < {SEPARATES}, "
                  f"median normalized margin strictly falling over p = {', '.join(f'{p:g}' for p in LEVELS)}")
    claim.measure("auc_raw", auc_raw, tolerance={"abs": 0.05})
    claim.measure("auc_normalized", auc_norm, tolerance={"abs": 0.05})
    claim.measure("auc_normalized_init_reference", auc_init, tolerance={"abs": 0.05})
    for p in LEVELS:
        claim.measure(f"median_raw_margin_p{p:g}", [float(np.median(d["margins"])) for d in by[p]],
                      tolerance={"rel": 0.25})
        claim.measure(f"median_normalized_margin_p{p:g}", med[p], tolerance={"rel": 0.25})
        claim.measure(f"spectral_complexity_p{p:g}", [d["R_A"] for d in by[p]], tolerance={"rel": 0.25})
        claim.measure(f"spectral_complexity_init_reference_p{p:g}", [d["R_A_init"] for d in by[p]],
                      tolerance={"rel": 0.25})
        claim.measure(f"lipschitz_p{p:g}", [d["lipschitz"] for d in by[p]], tolerance={"rel": 0.25})
    claim.figure(xy({f"p={p:g}": cdf(by[p][0]["margins"]) for p in LEVELS},
                    title=f"{model}, seed {seeds[0]}: raw training margins (CDF)", xlabel="margin",
                    ylabel="fraction of training examples"))
    claim.figure(xy({f"p={p:g}": cdf(by[p][0]["normalized"]) for p in LEVELS},
                    title=f"{model}, seed {seeds[0]}: margins / (R_A ||X||/n) (CDF)", xlabel="normalized margin",
                    ylabel="fraction of training examples"))
    ok = (all(a >= SEPARATES for a in auc_norm) and all(a < SEPARATES for a in auc_raw) and all(ordered)
          and "unfit" not in by)
    claim.check(ok, f"{model}: AUC normalized {np.round(auc_norm, 3).tolist()}, raw {np.round(auc_raw, 3).tolist()} "
                    f"(separates at >= {SEPARATES}); median normalized margin by p "
                    f"{ {p: np.round(med[p], 4).tolist() for p in LEVELS} }; unfitted runs: {by.get('unfit', 'none')}",
                known_failure=known_failure(MARGINS.id, scale, dataset, model))


@pytest.mark.claim(NORMS)
@pytest.mark.models(default=["mlp1x512"])
def test_norm_measures_lower_for_true_labels(claim, run, scale, dataset, data_root, seeds, model):
    """Rule in the module docstring (N-norms-vs-noise)."""
    by = measured_runs(run, model, dataset, seeds, data_root)
    lo, hi = LEVELS[0], LEVELS[-1]
    if any(d["gamma"] <= 0 for p in LEVELS for d in by[p]):
        claim.check(False, f"{model}: a run's 5th-percentile margin is not positive (it does not fit): "
                           f"{ {p: [d['gamma'] for d in by[p]] for p in LEVELS} }")
    claim.test = f"every measure lower at p={lo:g} than at p={hi:g}, for every seed (paired)"
    bad = []
    for name in MEASURES:
        for p in LEVELS:
            claim.measure(f"{name}_p{p:g}", [d[name] for d in by[p]], tolerance={"rel": 0.5})
        bad += not_lower(name, seeds, [d[name] for d in by[lo]], [d[name] for d in by[hi]])
    for p in LEVELS:
        claim.measure(f"gamma_p{p:g}", [d["gamma"] for d in by[p]], tolerance={"rel": 0.25})
    claim.figure(xy({name: (list(LEVELS), [float(np.mean(np.log10([d[name] for d in by[p]]))) for p in LEVELS])
                     for name in MEASURES},
                    title=f"{model}: norm measures over the margin vs label corruption", xlabel="label corruption p",
                    ylabel="log10 measure (mean over seeds)"))
    claim.check(not bad and "unfit" not in by, not_lower_summary(model, bad, len(MEASURES) * len(seeds), by.get("unfit")),
                known_failure=known_failure(NORMS.id, scale, dataset, model))


LIPSCHITZ = ClaimInfo(
    id="B-lipschitz-grows",
    title="The Lipschitz bound grows over training, far more for random labels",
    statement="The product of the layers' spectral norms grows across training epochs, far more for a "
              "network fitted to random labels than for one fitted to true labels (normalizing by the "
              "margin removes the growth: recorded, not decided).",
    source="Bartlett, Foster & Telgarsky 2017, Spectrally-normalized margin bounds for neural "
           "networks (NeurIPS), Fig. 1",
    paper="Directions only: AlexNet on cifar10, Lipschitz constants across epochs track the excess "
          "risk, much larger for random labels; normalized by margins, the growth is neutralized. "
          "No numbers are given.",
)


def _growth(res) -> float:
    return res.history[-1]["lipschitz"] / res.history[0]["lipschitz"]


def _over_margin(res):
    pts = [(h["epoch"], h["lipschitz"] / h["margin_median"]) for h in res.history if h["margin_median"] > 0]
    return [p[0] for p in pts], [p[1] for p in pts]


@pytest.mark.claim(LIPSCHITZ)
@pytest.mark.models(default=["mlp1x512"])
def test_lipschitz_grows_more_for_random_labels(claim, run, scale, dataset, seeds, model):
    """Rule in the module docstring (B-lipschitz-grows)."""
    cfg = run.config(model=model, seed=seeds[0])
    try:   # an unsupported network is skipped before it is trained
        N.chain(initial_model(cfg, dataset.in_shape, dataset.num_classes), dataset.x_train[:1])
    except UsageError as exc:
        pytest.skip(f"{model}: the Lipschitz bound is not defined for this network: {exc}")
    runs = {c: run.many(protocols.randomization(model, c, seeds, track_spectral=True))
            for c in ("true_labels", "random_labels")}
    g = {c: [_growth(r) for r in rs] for c, rs in runs.items()}
    claim.test = "per seed: growth of L over training > 1 on both label sets, and growth_random - 1 >= 2 (growth_true - 1)"
    for c, rs in runs.items():
        claim.measure(f"lipschitz_growth_{c}", g[c], unit="x", tolerance={"rel": 0.25})
        claim.measure(f"lipschitz_final_{c}", [r.history[-1]["lipschitz"] for r in rs], tolerance={"rel": 0.25})
        claim.measure(f"lipschitz_over_median_margin_growth_{c}",
                      [(lambda e, v: v[-1] / v[0] if v else float("nan"))(*_over_margin(r)) for r in rs],
                      unit="x", tolerance={"rel": 0.5})
    claim.figure(xy({f"{c}, seed {seeds[0]}": ([h["epoch"] for h in rs[0].history],
                                              [h["lipschitz"] for h in rs[0].history]) for c, rs in runs.items()},
                    title=f"Fig. 1: {model}, Lipschitz bound prod ||A_i||_sigma over epochs", xlabel="epoch",
                    ylabel="prod of spectral norms"))
    claim.figure(xy({f"{c}, seed {seeds[0]}": _over_margin(rs[0]) for c, rs in runs.items()},
                    title=f"{model}: Lipschitz bound / median training margin (epochs with a positive median)",
                    xlabel="epoch", ylabel="L / median margin"))
    unfit = [r.config.label() for rs in runs.values() for r in rs if not r.fitted]
    ok = (all(x > 1 for c in g for x in g[c]) and not unfit
          and all(r - 1 >= 2 * (t - 1) for t, r in zip(g["true_labels"], g["random_labels"])))
    claim.check(ok, f"{model}: growth of L true {np.round(g['true_labels'], 2).tolist()}, random "
                    f"{np.round(g['random_labels'], 2).tolist()}; unfitted: {unfit or 'none'}",
                known_failure=known_failure(LIPSCHITZ.id, scale, dataset, model))


GROWS = ClaimInfo(
    id="N-norms-grow-with-n",
    title="For (mostly) random labels the norm measures grow with the training-set size",
    statement="Fitted to random labels, a network needs more capacity for more examples: the l2, "
              "l1-path, l2-path and spectral measures over the margin grow with the training-set size.",
    source="Neyshabur, Bhojanapalli, McAllester & Srebro 2017, Exploring generalization in deep "
           "learning (NeurIPS), Fig. 1",
    paper="Directions only: VGG on cifar10 subsets of 1k-50k (log scale), every measure grows with "
          "the size for random labels; for true labels more slowly. No numbers are given. Here: "
          "p = 0.8 label noise, not p = 1 (the runs the suite trains at several sizes).",
)
GROW_LEVEL = 0.8


@pytest.mark.claim(GROWS)
@pytest.mark.models(default=["mlp1x512"])
def test_norm_measures_grow_with_size(claim, run, scale, dataset, data_root, seeds, model):
    """Rule in the module docstring (N-norms-grow-with-n)."""
    net = initial_model(run.config(model=model, seed=seeds[0]), dataset.in_shape, dataset.num_classes)
    try:
        N.path_sum(net, dataset.x_train[:1], 1)
    except UsageError as exc:
        pytest.skip(f"{model}: the measures are not defined for this network: {exc}")
    sizes = protocols.CAPACITY_SIZES.get(scale.name, protocols.CAPACITY_SIZES["cpu"])
    full = run.config(model=model).n_train or dataset.n_train
    levels = (0.0, GROW_LEVEL)
    res = {(p, n): run.many([{**o, "keep_model": True} for o in protocols.capacity(model, p, n, full, seeds)])
           for p in levels for n in sizes}
    vals = {k: [measure_run(r, data_root) for r in rs] for k, rs in res.items()}
    unfit = [r.config.label() for rs in res.values() for r in rs if not r.fitted or measure_run(r, data_root)["gamma"] <= 0]
    claim.test = f"at p = {GROW_LEVEL}: one-sided Spearman trend of every measure in n, p-value <= 0.05"
    pvals = {}
    for name in MEASURES:
        for p in levels:
            xs = [n for n in sizes for _ in seeds]
            ys = [v.get(name, float("nan")) for n in sizes for v in vals[(p, n)]]
            rho, pv = spearman(xs, ys)
            claim.measure(f"spearman_{name}_p{p:g}", rho, tolerance={"abs": 0.2})
            if p == GROW_LEVEL:
                pvals[name] = pv
                claim.measure(f"p_value_{name}", pv)
            for n in sizes:
                claim.measure(f"{name}_p{p:g}_n{n}", [v.get(name, float("nan")) for v in vals[(p, n)]],
                              tolerance={"rel": 0.5})
    claim.figure(xy({f"{name}, p={p:g}": (list(sizes), [float(np.mean(np.log10([v[name] for v in vals[(p, n)]])))
                                                      for n in sizes])
                     for name in MEASURES for p in levels if not unfit},
                    title=f"{model}: norm measures over the margin vs training-set size", xlabel="training examples",
                    ylabel="log10 measure (mean over seeds)"))
    claim.check(not unfit and all(pv <= 0.05 for pv in pvals.values()),
                f"{model}: Spearman p-values at p={GROW_LEVEL}: "
                f"{ {k: round(v, 4) for k, v in pvals.items()} }; unfitted: {unfit or 'none'}",
                known_failure=known_failure(GROWS.id, scale, dataset, model))

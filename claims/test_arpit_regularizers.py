"""Arpit et al. (ICML 2017), §5 (Fig. 10 and 11): explicit regularizers hinder the memorization of
noise more than the learning of real data, and dropout (with adversarial training) does so best.

Each regularizer family is trained at a grid of strengths on random labels and on real labels with
the same budget (a fixed number of epochs, no stop at fit): the random-label training accuracy says
how much noise was memorized, the best validation accuracy on real labels how much was learned.

Decision rules (written before the grid was measured, 2026-11-27):
  drop_noise(s) = random-label train acc at strength 0 minus at s;
  drop_real(s)  = real best validation acc at strength 0 minus at s (means over seeds).
  (a) A-reg-hinders-noise, one item per family: H0 is rejected when some strength s in the grid has
      drop_noise(s) >= 0.10 and drop_noise(s) >= 5 x max(drop_real(s), 0.01).
  (b) A-reg-ranking: S_f = the largest drop_noise(s) of family f over the strengths with
      drop_real(s) <= 0.01 (0 if none): how much memorization f removes at a cost of at most one
      point of real accuracy. Reproduced when a dropout family (dropout, or dropout with adversarial
      training) has the largest S_f.

cpu scale: mlp1x512 (full width) on a class-balanced 1,000 of mnist5k's digits, 40 epochs (where the
unregularized net reaches ~98% running accuracy on random labels), 2 seeds; three strengths a
family. paper scale: small AlexNet on CIFAR-10, 60 epochs, the paper's ranges at five strengths.
"""
import numpy as np
import pytest

from rethinkbench.suite.evidence import ClaimInfo
from rethinkbench.suite.figspecs import xy

from known_failures import known_failure

REG_HINDERS = ClaimInfo(
    id="A-reg-hinders-noise",
    title="Regularizers hinder memorization more than learning",
    statement="Each explicit regularizer, at some strength, cuts the training accuracy reached on "
              "random labels far more than it cuts validation accuracy on real labels.",
    source="Arpit et al. 2017, §5 (Fig. 10)",
    paper="Fig. 10 (MNIST MLP / CIFAR-10 CNN): dropout, input dropout, input and hidden Gaussian "
          "noise, weight decay and dropout + adversarial training all lower random-label training "
          "accuracy while real validation accuracy moves less.",
)
REG_RANKING = ClaimInfo(
    id="A-reg-ranking",
    title="Dropout (with adversarial training) has the flattest regularization frontier",
    statement="Among the regularizers, dropout, alone or with adversarial training, removes the "
              "most memorization of noise for the least loss of real validation accuracy.",
    source="Arpit et al. 2017, §5 (Fig. 10 and 11)",
    paper="Fig. 10: dropout with adversarial training (and dropout alone) keeps the best real "
          "validation accuracy at any level of random-label training accuracy.",
)

# Family -> strengths > 0 per scale (strength 0 is the shared unregularized run).
GRID = {
    "smoke": {"dropout": (0.5,), "input_dropout": (0.5,), "input_noise": (1.0,),
              "hidden_noise": (0.2,), "weight_decay": (2e-3,), "dropout_adversarial": (0.5,)},
    "cpu": {"dropout": (0.25, 0.5, 0.75), "input_dropout": (0.2, 0.5, 0.8),
            "input_noise": (0.5, 1.0, 2.0), "hidden_noise": (0.1, 0.2, 0.3),
            "weight_decay": (5e-4, 2e-3, 1e-2), "dropout_adversarial": (0.2, 0.5)},
    "paper": {"dropout": (0.1, 0.3, 0.5, 0.7, 0.9), "input_dropout": (0.1, 0.3, 0.5, 0.7, 0.9),
              "input_noise": (0.5, 1.0, 2.0, 3.5, 5.0), "hidden_noise": (0.05, 0.1, 0.2, 0.25, 0.3),
              "weight_decay": (1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
              "dropout_adversarial": (0.2, 0.3, 0.5, 0.7)},
}
FAMILIES = tuple(GRID["cpu"])
# A plugin model's factory without a `dropout` keyword cannot run the dropout families (skipped).
DROPOUT_FAMILIES = ("dropout", "dropout_adversarial")
FAMILY_PARAMS = [pytest.param(f, marks=pytest.mark.requires("dropout")) if f in DROPOUT_FAMILIES else f
                 for f in FAMILIES]
ADV_DROPOUT = 0.5        # the dropout under adversarial training (Arpit et al. combine the two)
BUDGET = {"smoke": dict(n_train=200, max_epochs=20), "cpu": dict(n_train=1000, max_epochs=40),
          "paper": dict(n_train=None, max_epochs=60)}
SEEDS = {"smoke": 1, "cpu": 2}   # paper: the session's --seeds
DECISIVE_DROP, RATIO, FLOOR, COST = 0.10, 5.0, 0.01, 0.01


def regularizer(family: str, strength: float) -> dict:
    """The RunConfig fields of `family` at `strength` (0: none)."""
    if family == "dropout_adversarial":
        return dict(dropout=ADV_DROPOUT, adversarial=strength) if strength else {}
    return {family: strength} if strength else {}


def frontier(run, scale, seeds, dataset, model, family):
    """[(strength, random-label train accs, real best-val accs)] from strength 0 up, one acc per seed."""
    budget = dict(BUDGET[scale.name], stop_at_fit=False)
    if budget["n_train"] is not None and budget["n_train"] >= dataset.n_train:
        budget["n_train"] = None    # a smaller (plugin) dataset: all of it
    seeds = seeds[:SEEDS.get(scale.name, len(seeds))]
    points = []
    for s in (0.0, *GRID[scale.name][family]):
        reg = regularizer(family, s)
        noise = run.many([dict(model=model, corruption="random_labels", seed=k, **budget, **reg) for k in seeds])
        real = run.many([dict(model=model, corruption="true_labels", seed=k, **budget, **reg) for k in seeds])
        points.append((s, [r.final_train_acc for r in noise], [r.best_test_acc for r in real]))
    return points


def drops(points):
    """[(strength, drop_noise, drop_real)] for the strengths > 0, from the means over seeds."""
    tr0, va0 = np.mean(points[0][1]), np.mean(points[0][2])
    return [(s, float(tr0 - np.mean(tr)), float(va0 - np.mean(va))) for s, tr, va in points[1:]]


def suppression_at_cost(points) -> float:
    """S_f: the most memorization removed at a real-accuracy cost of at most COST."""
    return max([dn for _, dn, dr in drops(points) if dr <= COST], default=0.0)


@pytest.mark.claim(REG_HINDERS)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_regularizer_hinders_memorization(claim, run, scale, seeds, dataset, model, family):
    """H0: no strength s of the family has drop_noise(s) >= 0.10 and >= 5 x max(drop_real(s), 0.01)."""
    if family == "hidden_noise":
        skip_without_relu_modules(model, dataset)
    points = frontier(run, scale, seeds, dataset, model, family)
    for s, tr, va in points:
        claim.measure(f"random_train_acc_{family}{s:g}", tr, tolerance={"abs": 0.05})
        claim.measure(f"real_best_val_{family}{s:g}", va, tolerance={"abs": 0.02})
    good = [(s, dn, dr) for s, dn, dr in drops(points) if dn >= DECISIVE_DROP and dn >= RATIO * max(dr, FLOOR)]
    claim.test = (f"some strength s of {family}: drop in random-label train acc ≥ {DECISIVE_DROP} and ≥ "
                  f"{RATIO:g} × max(drop in real best val acc, {FLOOR})")
    claim.figure(xy({"random labels: train acc": ([p[0] for p in points], [float(np.mean(p[1])) for p in points]),
                     "real labels: best validation acc": ([p[0] for p in points], [float(np.mean(p[2])) for p in points])},
                    title=f"{model}, {family}: accuracy vs strength (Fig. 11)", xlabel=_strength_label(family),
                    ylabel="accuracy"))
    summary = "; ".join(f"{family}={s:g}: noise {dn:+.3f}, real {dr:+.3f}" for s, dn, dr in drops(points))
    item = f"{model}-{family}"
    claim.check(bool(good), f"{model}: no strength decisive ({summary})",
                known_failure=known_failure(REG_HINDERS.id, scale, run.config(model=model).dataset, item))


@pytest.mark.claim(REG_RANKING)
@pytest.mark.models(default=["mlp1x512"], paper=["alexnet_small"])
@pytest.mark.requires("dropout")
def test_dropout_has_the_flattest_frontier(claim, run, scale, seeds, dataset, model):
    """H0: some family other than dropout / dropout + adversarial removes more memorization at a
    real-accuracy cost of at most one point (S_f above) than both dropout families."""
    skip_without_relu_modules(model, dataset)
    fronts = {f: frontier(run, scale, seeds, dataset, model, f) for f in FAMILIES}
    score = {f: suppression_at_cost(p) for f, p in fronts.items()}
    for f in FAMILIES:
        # No CI tolerance: S_f jumps when some strength's real-accuracy cost crosses the one-point
        # line (input dropout 0.8 sits at 0.6 points), a step another CPU may take. The accuracies
        # it is made of are guarded, strength by strength, in A-reg-hinders-noise.
        claim.measure(f"suppression_at_1pt_{f}", score[f])
    best_dropout = max(score[f] for f in DROPOUT_FAMILIES)
    best_other = max(v for f, v in score.items() if f not in DROPOUT_FAMILIES)
    claim.test = ("S_f = max drop in random-label train acc over strengths costing ≤ 1 point of real "
                  "best val acc; max(S_dropout, S_dropout_adversarial) ≥ every other S_f")
    claim.figure(xy({f: ([float(np.mean(tr)) for _, tr, _ in p], [float(np.mean(va)) for _, _, va in p])
                     for f, p in fronts.items()},
                    title=f"{model}: regularization frontier (Fig. 10), strength rising along each curve",
                    xlabel="train accuracy on random labels", ylabel="best validation accuracy, real labels"))
    ranking = ", ".join(f"{f} {v:.3f}" for f, v in sorted(score.items(), key=lambda kv: -kv[1]))
    claim.check(best_dropout >= best_other, f"{model}: suppression at ≤1 point cost: {ranking}",
                known_failure=known_failure(REG_RANKING.id, scale, run.config(model=model).dataset, model))


def skip_without_relu_modules(model: str, dataset) -> None:
    """Hidden noise is added after every nn.ReLU module (rethinkbench/harness/regularizers.py): a plugin
    network that calls F.relu has none, so the claim cannot vary it there."""
    import torch
    import rethinkbench as rb

    net = rb.build_model(model, dataset.in_shape, dataset.num_classes)
    if not any(isinstance(m, torch.nn.ReLU) for m in net.modules()):
        pytest.skip(f"hidden Gaussian noise attaches to nn.ReLU modules, and {model!r} has none "
                    f"(it calls F.relu?): use nn.ReLU modules to run this item")


def _strength_label(family: str) -> str:
    return {"dropout": "dropout rate", "input_dropout": "input dropout rate",
            "input_noise": "input noise std (standardized pixels)", "hidden_noise": "hidden noise std",
            "weight_decay": "weight decay", "dropout_adversarial": "adversarial loss weight (dropout 0.5)"}[family]

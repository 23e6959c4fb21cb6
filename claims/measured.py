"""The measured networks shared by the claims about what tells a memorizing network from a
generalizing one (test_bartlett_neyshabur.py, test_neyshabur_sharpness.py): the MEASURE_LEVELS runs
with their trained networks, and each run's margins and norm measures, computed once a session.

Imported as a top-level module, as known_failures.py is (claims/ has no __init__.py, so pytest puts
this directory on sys.path): every claim module gets the same module, hence one cache of measures.
"""
import numpy as np
import pytest

from rethinkbench.base.errors import UsageError
from rethinkbench.base.threads import run_threads
from rethinkbench.engine.train import initial_model, prepare_dataset
from rethinkbench.measures import margins as M
from rethinkbench.measures import norms as N
from rethinkbench.suite import protocols

LEVELS = protocols.MEASURE_LEVELS
MEASURES = ("l2", "l1_path", "l2_path", "spectral")

_MEASURED: dict = {}   # run key -> measures, shared by every claim in one session


def run_data(result, data_root, data=None):
    """The training data run `result` saw (`data`: the in-memory dataset of a custom: run)."""
    return prepare_dataset(result.config, data, data_root, "cpu")


def measure_run(result, data_root, data=None) -> dict:
    """Margins, spectral complexity and Neyshabur et al.'s norm measures of a kept network on its
    own training set (labels as trained), computed once per run key, on one intra-op thread as the
    run trained (under -n 0 torch's default of all cores spins against other processes on a shared
    machine, and the numbers match those of an xdist worker)."""
    key = result.config.key()
    if key not in _MEASURED:
        with run_threads():
            _MEASURED[key] = _measure(result, data_root, data)
    return _MEASURED[key]


def _measure(result, data_root, data) -> dict:
    cfg = result.config
    ds = run_data(result, data_root, data)
    model = result.model.cpu().double()
    x, y = ds.x_train.double(), ds.y_train
    m = M.margins(model, x, y)
    r0 = N.spectral_complexity(model, x)
    rinit = N.spectral_complexity(model, x, reference=initial_model(cfg, ds.in_shape, ds.num_classes).double())
    scale = M.data_norm(x) / len(x)
    gamma = M.margin_percentile(m)
    return {"margins": m, "normalized": m / (r0 * scale), "normalized_init": m / (rinit * scale),
            "R_A": r0, "R_A_init": rinit, "lipschitz": N.lipschitz(model, x), "gamma": gamma,
            **(N.neyshabur_measures(model, x, gamma) if gamma > 0 else {})}


def skip_unsupported(run, model, dataset, seed):
    """Skip, before anything is trained, a network the measures are not defined for."""
    net = initial_model(run.config(model=model, seed=seed), dataset.in_shape, dataset.num_classes)
    try:
        N.spectral_complexity(net, dataset.x_train[:1])
        N.path_sum(net, dataset.x_train[:1], 1)
    except UsageError as exc:
        pytest.skip(f"{model}: the measures are not defined for this network: {exc}")


def level_runs(run, model, seeds) -> dict:
    """{p: [RunResult per seed]} for the MEASURE_LEVELS runs, networks kept. Every level's runs are
    asked for before any is measured, so that --plan sees them all."""
    return {p: run.many([{**o, "keep_model": True} for o in protocols.label_noise(model, p, seeds)]) for p in LEVELS}


def measured_runs(run, model, dataset, seeds, data_root) -> dict:
    """{p: [measures per seed]} for the MEASURE_LEVELS runs (trained networks from the cache), and
    "unfit": the levels and seeds that did not fit, if any."""
    skip_unsupported(run, model, dataset, seeds[0])
    out = {}
    for p, res in level_runs(run, model, seeds).items():
        try:
            out[p] = [measure_run(r, data_root) for r in res]
        except UsageError as exc:
            pytest.skip(f"{model}: the measures are not defined for this network: {exc}")
        unfit = [r.config.seed for r in res if not r.fitted]
        if unfit:
            out.setdefault("unfit", []).append(f"p={p:g} seeds {unfit}")
    return out


def not_lower(what: str, seeds, true_values, random_values) -> list[str]:
    """The paired comparisons that fail "lower for true labels than for random labels": one line per
    seed whose true-label value is not below its random-label one (a nan counts against)."""
    return [f"{what} seed {s}: {t:.4g} (p={LEVELS[0]:g}) >= {r:.4g} (p={LEVELS[-1]:g})"
            for s, t, r in zip(seeds, true_values, random_values) if not t < r]


def not_lower_summary(model: str, bad: list[str], comparisons: int, unfit) -> str:
    """The claim.check message of a paired "lower for true labels" rule."""
    return (f"{model}: {len(bad)} of {comparisons} comparisons not lower for true labels"
            f"{': ' + '; '.join(bad) if bad else ''}; unfitted runs: {unfit or 'none'}")


def cdf(values, points=50):
    q = np.linspace(0, 1, points)
    return [float(v) for v in np.quantile(values, q)], [float(v) for v in q]

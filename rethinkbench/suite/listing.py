"""`rethinkbench list`: every name a claim or a RunConfig may use, with where it comes from.

Models and datasets (built-in, installed entry points, and the import-path forms), corruptions,
scales, and the claims of a claims/ directory (collected by pytest: nothing runs or trains).
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import pytest

from rethinkbench.base.errors import RethinkbenchError
from rethinkbench.engine.plan import KNOWN_DATA
from rethinkbench.harness.corruptions import CORRUPTIONS
from rethinkbench.harness.data import DATASETS
from rethinkbench.harness.models import MODELS, PAPER_LR
from rethinkbench.registry.core import CUSTOM_PREFIX, entry_points, resolve_dataset, resolve_model
from rethinkbench.suite.scales import SCALES

CORRUPTION_TEXT = {
    "true_labels": "the data as it is",
    "partial_labels": "each training label, with probability level=p in [0, 1], a uniform draw over the classes",
    "random_labels": "every training label a uniform draw over the classes",
    "shuffled_pixels": "one fixed permutation of pixel positions for every image (test images too)",
    "random_pixels": "a different random permutation of pixel positions for each training image",
    "gaussian": "training images replaced by Gaussian noise with the data's mean and standard deviation",
}


def listing(claims_dir: Path | None = None) -> dict:
    """The names as plain data (`rethinkbench list --json`). `claims_dir`: where to collect claims
    from (None: no claims section)."""
    models = [{"name": m, "source": "built-in", "version": None,
               "origin": "rethinkbench (Nakkiran et al.'s)" if m == "resnet18" else "rethinkbench (the paper's)",
               "default_lr": PAPER_LR[m], "dropout": m != "resnet18"} for m in MODELS]
    models += [_installed("model", ep) for ep in entry_points("model")]
    datasets = []
    for d in DATASETS:
        n_train, n_test, shape, classes = KNOWN_DATA[d]
        datasets.append({"name": d, "source": "built-in", "origin": "rethinkbench", "version": None,
                         "about": f"{n_train:,} / {n_test:,} examples, {'x'.join(map(str, shape))}, "
                                  f"{classes} classes"})
    datasets += [_installed("dataset", ep) for ep in entry_points("dataset")]
    out = {"models": models, "datasets": datasets,
           "corruptions": [{"name": c, "level": c == "partial_labels", "about": CORRUPTION_TEXT[c]}
                           for c in CORRUPTIONS],
           "scales": [{"name": s.name, "about": s.description} for s in SCALES.values()]}
    if claims_dir is not None:
        out["claims"] = collect_claims(claims_dir)
    return out


def _installed(kind: str, ep) -> dict:
    """An entry point, resolved (imported) to show its version and lr; a broken one is listed with
    its error rather than hiding the rest."""
    entry = {"name": ep.name, "source": "entry point", "origin": f"{ep.value}", "version": None}
    dist = getattr(ep, "dist", None)
    if dist is not None:
        entry["origin"] += f" from {dist.name} {dist.version}"
    try:
        plugin = resolve_model(ep.name) if kind == "model" else resolve_dataset(ep.name)
    except RethinkbenchError as exc:
        entry["error"] = str(exc)
        return entry
    entry["version"] = plugin.version
    if kind == "model":
        entry.update(default_lr=plugin.default_lr, dropout="dropout" in plugin.accepts)
    return entry


class _ItemCollector:
    """A pytest plugin that keeps the collected items marked `claim`, and collection errors."""

    def __init__(self):
        self.items: list = []
        self.errors: list[str] = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_finish(self, session):
        self.items = [item for item in session.items if item.get_closest_marker("claim") is not None]


def collect_claim_items(claims_dir: Path, rootdir: Path | None = None) -> list:
    """The pytest items of `claims_dir` that carry @pytest.mark.claim, in collection order, from a
    --collect-only session at the cpu scale (nothing runs or trains); a RethinkbenchError naming
    what failed if the directory is missing or does not collect. Shared by `rethinkbench list` and
    scripts/gen_claims_doc.py."""
    claims_dir = Path(claims_dir)
    if not claims_dir.is_dir():
        raise RethinkbenchError(f"no claims directory at {claims_dir} (run from a rethinkbench "
                                f"checkout, or pass --claims-dir PATH)")
    collector = _ItemCollector()
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "rethinkbench.suite.plugin",
            "--scale", "cpu", "--no-cache"]
    if rootdir is not None:
        args += ["--rootdir", str(rootdir)]
    sys.path.insert(0, str(claims_dir.resolve()))   # claim modules import their sibling known_failures
    try:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()) as out:
            code = pytest.main([*args, "--report-dir", tmp, str(claims_dir)], plugins=[collector])
    finally:
        sys.path.remove(str(claims_dir.resolve()))
    # Judged by what was collected, not by the exit status alone: the plugin may report on the
    # items it saw in a --collect-only session too (exit 1), and an empty directory is exit 5.
    if collector.errors or code not in (0, 1, 5):
        problems = "\n".join(collector.errors) or out.getvalue()
        raise RethinkbenchError(f"collecting {claims_dir} failed (pytest exit {int(code)}):\n{problems}")
    return collector.items


def collect_claims(claims_dir: Path) -> list[dict]:
    """Each claim of `claims_dir` (id, title, module, and whether it runs on --model), in the order
    pytest collects them; a RethinkbenchError if the directory is missing or does not collect."""
    claims: dict[str, dict] = {}
    for item in collect_claim_items(claims_dir):
        info = item.get_closest_marker("claim").args[0]
        entry = claims.setdefault(info.id, {"id": info.id, "title": info.title,
                                            "module": item.path.name, "generic": False,
                                            "trains": False})
        entry["generic"] |= item.get_closest_marker("models") is not None
        # A claim that takes the `run` fixture trains networks, if not --model's then its own.
        entry["trains"] |= "run" in getattr(item, "fixturenames", ())
        if info.paper_specific:
            entry["paper_specific"] = info.paper_specific
    return list(claims.values())


def format_listing(data: dict) -> str:
    lines = ["models (pytest claims/ --model NAME; rb.RunConfig(model=NAME)):"]
    for m in data["models"]:
        lines.append(_row(m, [f"lr {m['default_lr']:g}" if m.get("default_lr") else "no default lr",
                              "takes dropout" if m.get("dropout") else "no dropout"]))
    if not any(m["source"] == "entry point" for m in data["models"]):
        lines.append("  (no model plugins installed: entry point group rethinkbench.models)")
    lines.append(_row({"name": "module:factory", "origin": "any import path: factory(in_shape, "
                       "num_classes, width) -> nn.Module"}, []))
    lines += ["", "datasets (pytest claims/ --dataset NAME; rb.load_dataset(NAME)):"]
    for d in data["datasets"]:
        lines.append(_row(d, [d["about"]] if d.get("about") else []))
    if not any(d["source"] == "entry point" for d in data["datasets"]):
        lines.append("  (no dataset plugins installed: entry point group rethinkbench.datasets)")
    lines.append(_row({"name": "module:loader", "origin": "any import path: loader(seed, root) -> "
                       "rb.Dataset"}, []))
    lines.append(_row({"name": f"{CUSTOM_PREFIX}<id>", "origin": "an in-memory rb.Dataset: "
                       "rb.train(cfg, dataset=ds) with cfg.dataset = 'custom:<id>'"}, []))
    lines += ["", "corruptions (rb.corrupt(ds, KIND, level=...); rb.RunConfig(corruption=KIND)):"]
    for c in data["corruptions"]:
        lines.append(f"  {c['name']:<{NAME_WIDTH}} {c['about']}")
    lines += ["", "scales (pytest claims/ --scale NAME; --gpu is paper on CUDA):"]
    for s in data["scales"]:
        lines.append(f"  {s['name']:<{NAME_WIDTH}} {s['about']}")
    if "claims" in data:
        lines += ["", "claims (pytest claims/ -k ID; docs/claims.md):"]
        width = max((len(c["id"]) for c in data["claims"]), default=0)
        for c in data["claims"]:
            scope = ("paper's networks only" if c.get("paper_specific") else
                     "runs on --model" if c["generic"] else
                     "trains the networks it names, not --model" if c.get("trains") else
                     "trains no network")
            lines.append(f"  {c['id']:<{width}}  {c['title']}  [{scope}]")
    return "\n".join(lines)


NAME_WIDTH = 21


def _row(entry: dict, extras: list[str]) -> str:
    parts = [entry.get("source", ""), entry.get("origin", "")]
    if entry.get("version"):
        parts.append(f"version {entry['version']}")
    if entry.get("error"):
        parts.append(f"BROKEN: {entry['error']}")
    else:
        parts += extras
    return f"  {entry['name']:<{NAME_WIDTH}} " + "; ".join(p for p in parts if p)

"""Sample ``results.json`` dicts (schema 1, ``docs/results-schema.md``) for the report, compare and
CLI tests. Deterministic: the same arguments give the same dict, so tests can edit one field and
know everything else is unchanged.
"""

from __future__ import annotations

import copy
import math
import random
from html.parser import HTMLParser

HOSTILE = '<script>alert("rethinkbench")</script>'

DEVICE_KIND = "cpu:Intel(R) Xeon(R) Processor x2"

_VERDICT_OF_OUTCOME = {"passed": "reproduced", "failed": "not_reproduced",
                       "xfailed": "not_reproduced", "skipped": "skipped", "error": "error"}

_CORRUPTIONS = ["true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian"]


def sample_results(*, claims: int = 3, items_per_claim: int = 2, runs_per_item: int = 2,
                   epochs: int = 10, seed: int = 0, outcomes: list[str] | None = None) -> dict:
    """A results dict with ``claims`` claims of ``items_per_claim`` items each; every item has
    measurements (with and without tolerance) and one figure of each kind in turn
    (line, bar, hist, table), and ``runs_per_item`` runs with ``epochs``-long histories.

    ``outcomes`` cycles over the items (default: all passed)."""
    rng = random.Random(seed)
    outcomes = outcomes or ["passed"]
    runs: dict[str, dict] = {}
    claim_list = []
    item_number = 0
    for c in range(claims):
        claim_id = f"Z-sample-{c + 1}"
        items = []
        for i in range(items_per_claim):
            outcome = outcomes[item_number % len(outcomes)]
            corruption = _CORRUPTIONS[(c + i) % len(_CORRUPTIONS)]
            model = "mlp1x512" if i % 2 == 0 else "inception_small"
            keys = []
            for s in range(runs_per_item):
                key = f"run{len(runs):04d}" + "f" * 28
                runs[key] = _run(key, model, corruption, s, epochs, rng)
                keys.append(key)
            items.append(_item(claim_id, item_number, model, corruption, outcome, keys, runs, rng))
            item_number += 1
        verdicts = {item["verdict"] for item in items}
        # The plugin's rule: any errored item makes the claim an error.
        verdict = "error" if "error" in verdicts else verdicts.pop() if len(verdicts) == 1 else (
            "partial" if "reproduced" in verdicts else "not_reproduced")
        claim_list.append({
            "id": claim_id,
            "title": f"Sample claim {c + 1}",
            "statement": "Networks fit every randomization to 100% training accuracy.",
            "source": "Zhang et al. 2017, §2, Fig. 1a",
            "paper": "Inception 100.0, AlexNet 99.82, MLP3 100.0, MLP1 99.34",
            "verdict": verdict,
            "items": items,
        })
    return {
        "schema": 1,
        "rethinkbench_version": "0.1.0",
        "created": "2026-11-26T23:59:00+00:00",
        "total_seconds": 412.3,
        "scale": "cpu",
        "dataset": "mnist5k",
        "device": "cpu",
        "provenance": {
            "rethinkbench_version": "0.1.0", "git_commit": "abc123def4567890", "git_dirty": False,
            "python": "3.11.7", "torch": "2.9.0+cpu", "cuda": None,
            "device_name": "Intel(R) Xeon(R) Processor", "device_kind": DEVICE_KIND,
            "platform": "Linux-6.1-x86_64", "hostname": "ci-runner", "date": "2026-11-26",
        },
        "claims": claim_list,
        "runs": runs,
    }


def realistic_results() -> dict:
    """About the size of a full cpu-scale session: 40 items, 60 runs with 100-epoch histories,
    one or two figures per item."""
    results = sample_results(claims=14, items_per_claim=3, runs_per_item=1, epochs=100,
                             outcomes=["passed", "passed", "passed", "xfailed", "passed",
                                       "skipped"])
    # 42 items, 42 runs so far; some items use a second and third run, as claims that compare
    # corruption levels do.
    rng = random.Random(1)
    extra = 0
    for claim in results["claims"]:
        for item in claim["items"]:
            if extra < 18 and item["outcome"] != "skipped":
                key = f"extra{extra:03d}" + "e" * 28
                results["runs"][key] = _run(key, "mlp1x512", "gaussian", extra, 100, rng)
                item["runs"].append(key)
                extra += 1
            if len(item["figures"]) == 1 and item["figures"][0]["kind"] != "line":
                item["figures"].append(_line_figure([results["runs"][k] for k in item["runs"]]))
    return results


def hostile_results() -> dict:
    """A small results dict with a script tag in every text field a claim or run can set."""
    results = sample_results(claims=1, items_per_claim=4, runs_per_item=1, epochs=5,
                             outcomes=["failed", "passed", "skipped", "xfailed"])
    claim = results["claims"][0]
    for field in ("title", "statement", "source", "paper"):
        claim[field] = f"{field} {HOSTILE}"
    results["provenance"]["device_name"] = HOSTILE
    results["provenance"]["git_commit"] = HOSTILE
    results["dataset"] = HOSTILE
    for item in claim["items"]:
        item["params"][HOSTILE] = HOSTILE
        item["reason"] = f"rejected: {HOSTILE}"
        item["test"] = f"rule {HOSTILE}"
        item["measured"][HOSTILE] = {"value": 1.0, "unit": HOSTILE, "paper_note": HOSTILE}
        for figure in item["figures"]:
            figure["title"] = HOSTILE
            figure["xlabel"] = HOSTILE
            for series in figure.get("series", []):
                series["label"] = HOSTILE
            for bar in figure.get("bars", []):
                bar["label"] = HOSTILE
            if figure["kind"] == "table":
                figure["columns"][0] = HOSTILE
                figure["rows"][0][0] = HOSTILE
    for run in results["runs"].values():
        run["config"]["model"] = HOSTILE
    return results


def with_changes(results: dict, change) -> dict:
    """A deep copy of ``results`` after ``change(copy)``: the baseline stays untouched."""
    changed = copy.deepcopy(results)
    change(changed)
    return changed


def _run(key: str, model: str, corruption: str, seed: int, epochs: int, rng: random.Random
         ) -> dict:
    steps_per_epoch = 32
    # A learning curve that reaches 100% train accuracy after `fit` epochs, like a real run.
    fit = max(2, int(epochs * (0.3 + 0.5 * rng.random())))
    test_plateau = 0.1 if corruption != "true_labels" else 0.95
    history = []
    for epoch in range(1, epochs + 1):
        progress = min(epoch / fit, 1.0)
        train_acc = 0.1 + 0.9 * (1 - (1 - progress) ** 2)
        history.append({
            "epoch": epoch, "step": epoch * steps_per_epoch,
            "train_loss": 2.3 * math.exp(-4 * progress) + 1e-4,
            "train_acc": round(train_acc, 4),
            "test_acc": round(test_plateau * progress + 0.1 * (1 - progress), 4),
            "seconds": round(0.4 * epoch, 3),
        })
    return {
        "key": key,
        "config": {"dataset": "mnist5k", "corruption": corruption, "level": 1.0,
                   "model": model, "seed": seed, "epochs": epochs, "batch_size": 128,
                   "lr": 0.01},
        "cached": seed % 3 == 2,
        "train_seconds": round(2 + 10 * rng.random(), 2),
        "device_kind": DEVICE_KIND,
        "epochs_to_fit": fit, "steps_to_fit": fit * steps_per_epoch,
        "final_train_acc": 1.0, "final_test_acc": history[-1]["test_acc"],
        "best_test_acc": max(h["test_acc"] for h in history),
        "history": history,
    }


def _item(claim_id: str, number: int, model: str, corruption: str, outcome: str,
          keys: list[str], runs: dict, rng: random.Random) -> dict:
    run_list = [runs[k] for k in keys]
    accs = [r["final_train_acc"] for r in run_list]
    steps = [float(r["steps_to_fit"]) for r in run_list]
    mean_steps = sum(steps) / len(steps)
    sd_steps = (math.sqrt(sum((s - mean_steps) ** 2 for s in steps) / (len(steps) - 1))
                if len(steps) > 1 else None)   # no sd below two values
    kind = ("line", "bar", "hist", "table")[number % 4]
    reason = {"passed": "", "failed": f"{claim_id} rejected: ratio 7.9 > 5",
              "xfailed": f"{claim_id} not reproduced at cpu scale: test acc 0.31 (n=3, sd 0.02)",
              "skipped": "paper scale only (run with --gpu)",
              "error": "RuntimeError: NaN loss at epoch 3"}[outcome]
    return {
        "nodeid": f"claims/test_sample.py::test_{claim_id.replace('-', '_')}[cpu-{model}-"
                  f"{corruption}-{number}]",
        "params": {"model": model, "corruption": corruption, "n": number},
        "outcome": outcome,
        "verdict": _VERDICT_OF_OUTCOME[outcome],
        "reason": reason,
        "test": "one-sided: min over seeds of final train acc == 1.0",
        "duration": round(sum(r["train_seconds"] for r in run_list) + rng.random(), 2),
        "measured": {
            "final_train_acc": {"value": sum(accs) / len(accs),
                                "sd": 0.0 if len(accs) > 1 else None, "n": len(accs),
                                "values": accs, "unit": "", "paper": 0.9934,
                                "tolerance": {"abs": 0.02}},
            "steps_to_fit": {"value": mean_steps, "sd": sd_steps, "n": len(steps),
                             "values": steps, "unit": "steps", "paper": None,
                             "tolerance": {"rel": 0.25}},
            "test_acc_ratio": {"value": 1.7, "unit": "x", "paper": 3.5,
                               "paper_note": "(unconfirmed)"},
        },
        "runs": keys,
        "figures": [_figure(kind, run_list, rng)],
    }


def _figure(kind: str, run_list: list[dict], rng: random.Random) -> dict:
    if kind == "line":
        return _line_figure(run_list)
    if kind == "bar":
        return {"kind": "bar", "title": "Fig. 1b: time to fit vs label corruption",
                "xlabel": "label corruption p", "ylabel": "steps to fit (× true labels)",
                "bars": [{"label": f"p={p / 5:.1f}", "value": 1 + 3 * p / 5 + rng.random() / 5,
                          "err": rng.random() / 4} for p in range(6)]}
    if kind == "hist":
        return {"kind": "hist", "title": "Per-example error rate across seeds",
                "xlabel": "error rate", "ylabel": "count", "bins": 20,
                "series": [{"label": "real", "values": [rng.betavariate(0.5, 3)
                                                        for _ in range(300)]},
                           {"label": "random inputs", "values": [rng.betavariate(5, 5)
                                                                 for _ in range(300)]}]}
    return {"kind": "table", "title": "Table 1 replica",
            "columns": ["model", "crop", "wd", "train (ours)", "test (ours)", "test (paper)",
                        "diff"],
            "rows": [["mlp1x512", "no", "no", 1.0, 0.97, 0.5051, 0.4649],
                     ["mlp3x512", "no", "no", 1.0, 0.48, 0.5239, -0.0439],
                     ["inception_small", "yes", "yes", 1.0, 0.8905, 0.8905, 0.0]],
            "diff_column": "diff"}


def _line_figure(run_list: list[dict]) -> dict:
    return {"kind": "line", "title": "Fig. 1a: training loss", "xlabel": "step",
            "ylabel": "train loss", "logy": True,
            "series": [{"label": r["config"]["corruption"] + f" seed {r['config']['seed']}",
                        "x": [h["step"] for h in r["history"]],
                        "y": [h["train_loss"] for h in r["history"]]} for r in run_list]}


# ----------------------------------------------------------------------------------------------
# A minimal DOM for checking rendered HTML (the report's, or the one headless Chromium dumps)
# without a third-party parser.

_VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: "Element | None"):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list["Element"]:
        return [e for e in self.iter() if e is not self and (tag is None or e.tag == tag)
                and (cls is None or cls in e.classes)]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in _VOID_ELEMENTS:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root

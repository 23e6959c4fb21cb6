"""Figure specs (plain data, see docs/results-schema.md) built from runs, for the report."""
from __future__ import annotations

MAX_POINTS = 200   # keep results.json small: curves are thinned to at most this many points


def _thin(xs, ys):
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    step = len(xs) / MAX_POINTS
    idx = sorted({int(i * step) for i in range(MAX_POINTS)} | {len(xs) - 1})
    return [xs[i] for i in idx], [ys[i] for i in idx]


def curves(runs: dict, y: str, *, x: str = "step", title: str = "", ylabel: str | None = None,
           logy: bool = False) -> dict:
    """A line figure of history field `y` against `x` for each labelled run."""
    series = []
    for label, res in runs.items():
        pts = [(h[x], h[y]) for h in res.history if h.get(y) is not None]
        xs, ys = _thin([p[0] for p in pts], [p[1] for p in pts])
        series.append({"label": label, "x": xs, "y": ys})
    return {"kind": "line", "title": title, "xlabel": x, "ylabel": ylabel or y.replace("_", " "),
            "logy": logy, "series": series}


def loss_curves(runs: dict, title: str = "") -> dict:
    return curves(runs, "train_loss", title=title, ylabel="training loss")


def bars(values: dict, *, title: str, xlabel: str, ylabel: str, errors: dict | None = None) -> dict:
    return {"kind": "bar", "title": title, "xlabel": xlabel, "ylabel": ylabel,
            "bars": [{"label": str(k), "value": v, "err": (errors or {}).get(k)} for k, v in values.items()]}


def xy(series: dict, *, title: str, xlabel: str, ylabel: str, logx: bool = False) -> dict:
    """A line figure from {label: (xs, ys)}; `logx` draws x on a log scale (a width sweep)."""
    spec = {"kind": "line", "title": title, "xlabel": xlabel, "ylabel": ylabel, "logy": False,
            "series": [{"label": k, "x": list(v[0]), "y": list(v[1])} for k, v in series.items()]}
    if logx:   # only when asked: the specs of the other figures stay as they were
        spec["logx"] = True
    return spec

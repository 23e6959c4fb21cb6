"""The session's collected evidence, turned into results.json and the terminal table.

Items arrive as plain dicts attached to test reports (report.user_properties), so the same code
collects them in a plain run and on the pytest-xdist controller.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from rethinkbench.base.version import __version__
from rethinkbench.base.provenance import provenance
from rethinkbench.base.speed import cpu_speed_probe
from rethinkbench.report.verdicts import VERDICT_OF, claim_verdict, verdict_label

SCHEMA = 1
PROPERTY = "rethinkbench"


class ResultsSession:
    def __init__(self, scale: str, dataset: str, device: str, *, model: str | None = None,
                 lr: float | None = None, plugins: dict | None = None, not_comparable: str = ""):
        self.scale, self.dataset, self.device = scale, dataset, device
        self.model, self.lr = model, lr                # --model (None: each claim's paper models), --lr
        self.plugins = dict(plugins or {})             # "model"/"dataset" -> plugin info (not built-ins)
        self.not_comparable = not_comparable           # why the paper's numbers do not apply ("": they do)
        self.started = time.time()
        self.claims: dict[str, dict] = {}     # claim id -> claim entry (items appended in order)
        self.runs: dict[str, dict] = {}       # run key -> run entry
        self.trained = 0
        self.cached = 0
        self.unreported: list[str] = []       # collected tests that never delivered a report
        self.selection: dict | None = None    # what was asked for: args, -k, -m, selected node ids
        self.interrupted = False              # Ctrl-C: the file holds only what finished
        self.finished = 0                     # selected tests that reported a result
        self.kept_previous = False            # the complete results.json this partial one did not replace
        self._speed_probe: float | None = None

    # ------------------------------------------------------------------ collecting
    def add(self, payload: dict, outcome: str, reason: str, duration: float) -> None:
        info = payload["info"]
        entry = self.claims.setdefault(info["id"], {**info, "verdict": None, "items": []})
        item = dict(payload["evidence"])
        item.update(outcome=outcome, verdict=VERDICT_OF[outcome], reason=reason, duration=duration)
        # The networks the item trained (a plugin's module:factory too), whatever --model was.
        models = sorted({run["config"]["model"] for run in payload.get("runs", {}).values()
                         if isinstance(run.get("config"), dict) and run["config"].get("model")})
        if models:
            item["models"] = models
            entry["models"] = sorted(set(entry.get("models", [])) | set(models))
        entry["items"].append(item)
        for key, run in payload.get("runs", {}).items():
            if key not in self.runs:
                self.trained += not run["cached"]
                self.cached += run["cached"]
            self.runs.setdefault(key, run)

    @property
    def has_claims(self) -> bool:
        return bool(self.claims)

    # ------------------------------------------------------------------ verdicts
    @staticmethod
    def claim_verdict(items: list[dict]) -> str:
        return claim_verdict(i["verdict"] for i in items)

    def results(self) -> dict:
        claims = []
        for entry in self.claims.values():
            entry["verdict"] = self.claim_verdict(entry["items"])
            claims.append(entry)
        return {"schema": SCHEMA, "rethinkbench_version": __version__,
                "created": provenance()["date"], "total_seconds": round(time.time() - self.started, 2),
                "scale": self.scale, "dataset": self.dataset, "model": self.model, "device": self.device,
                **({"lr": self.lr} if self.lr is not None else {}),
                **({"plugins": self.plugins} if self.plugins else {}),
                **({"not_comparable": self.not_comparable} if self.not_comparable else {}),
                "provenance": {**provenance(self.device), **self.speed_probe()},
                "claims": claims, "runs": self.runs,
                **({"unreported": list(self.unreported)} if self.unreported else {}),
                **({"selection": self.selection} if self.selection is not None else {}),
                **({"interrupted": True, "progress": {
                    "selected": len((self.selection or {}).get("items", [])),
                    "finished": self.finished}} if self.interrupted else {})}

    def speed_probe(self) -> dict:
        """{"speed_probe_seconds": s} for a session that trained runs on the CPU at a timed scale
        (base/speed.py: compare's timing check divides out the machine's speed with it); measured
        once, after the runs, when the session's workers are done. {} otherwise: smoke sessions
        (the harness's own tests start hundreds) and GPU sessions, whose runs it says nothing about."""
        if self.device != "cpu" or self.scale == "smoke" or not self.trained:
            return {}
        if self._speed_probe is None:
            self._speed_probe = round(cpu_speed_probe(), 5)
        return {"speed_probe_seconds": self._speed_probe}

    # ------------------------------------------------------------------ output
    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "results.json"
        if self.interrupted:
            self.kept_previous = keep_complete_previous(directory)
        write_json_atomic(path, self.results())
        return path

    def table_lines(self) -> list[str]:
        """One row per claim; a claim with an errored item shows that error instead of numbers,
        and a closing line says an error is the harness's failure, not the paper's."""
        rows = [("claim", "scale", "measured", "verdict")]
        rejected = []
        errors = 0
        for cid, entry in self.claims.items():
            items = entry["items"]
            verdict = self.claim_verdict(items)
            errored = [i for i in items if i["verdict"] == "error"]
            errors += len(errored)
            if errored:   # no numbers to show: what went wrong instead (its first line)
                measured = (errored[0]["reason"].strip() or "error").splitlines()[0]
            else:
                measured = "; ".join(i.get("summary", "") for i in items if i.get("summary"))
            n_ok = sum(i["verdict"] == "reproduced" for i in items)
            rows.append((cid, self.scale, _clip(measured, 70),
                         f"{verdict_label(verdict)} ({n_ok}/{len(items)})"))
            rejected += [i for i in items if i["verdict"] in ("not_reproduced", "inconclusive")]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        lines = [fmt(rows[0]), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows[1:]]
        for item in rejected:   # one line each: what the claim measured when it said no
            why = (item.get("reason") or "").strip().splitlines()
            line, label = why[0] if why else item["nodeid"], verdict_label(item["verdict"])
            lines.append(_clip(line if label in line else f"{label}: {line}", 200))
        if errors:
            lines.append(f"{errors} item(s) ended in an error: a failure of rethinkbench or its "
                         f"setup, not evidence about the paper (tracebacks above)")
        return lines


PREVIOUS = ("results.previous.json", "index.previous.html")


def keep_complete_previous(directory: Path) -> bool:
    """Before an interrupted session writes its partial results: a complete results.json (and its
    index.html) already there is renamed to results.previous.json / index.previous.html, never
    overwritten by a partial one. A previous file that was itself partial is just replaced (the
    last complete one, if any, is already kept). True when something was kept."""
    path = directory / "results.json"
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):   # none, or unreadable: nothing complete to keep
        return False
    if not isinstance(previous, dict) or previous.get("interrupted"):
        return False
    os.replace(path, directory / PREVIOUS[0])
    html = directory / "index.html"
    if html.exists():
        os.replace(html, directory / PREVIOUS[1])
    return True


def write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_finite(data), f, indent=1, allow_nan=False)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(obj):
    """NaN/inf become null so the file stays strict JSON (a diverged number must not lose the rest)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"

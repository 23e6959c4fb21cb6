"""The rethinkbench pytest plugin: options, markers, fixtures, results collection, summary.

Loaded by the project's root conftest.py (`pytest_plugins = ["rethinkbench.pytest_plugin"]`).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytest

from .cache import DEFAULT_DIR, ResultsCache
from .data import DATASETS, default_data_root, load_dataset
from .errors import UsageError
from .evidence import ClaimInfo, Evidence
from .scales import SCALES, get_scale
from .session import PROPERTY, ResultsSession

SESSION_KEY = pytest.StashKey["ResultsSession"]()
STATE_KEY = pytest.StashKey["PluginState"]()
EVIDENCE_KEY = pytest.StashKey["ItemEvidence"]()
PROGRESS_EVERY_S = 30.0   # a long run prints a progress line at most this often


# ----------------------------------------------------------------------------- option parsers

def _choice(name, allowed):
    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value
    return parse


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer (at least 1), got {n}")
    return n


def pytest_addoption(parser):
    g = parser.getgroup("rethinkbench", "rethinkbench: re-check generalization claims")
    g.addoption("--gpu", action="store_true", default=False,
                help="paper scale on CUDA: CIFAR-10, the paper's models (default: off; a usage "
                     "error when CUDA is not available)")
    g.addoption("--scale", type=_choice("--scale", tuple(SCALES)), default=None, metavar="NAME",
                help="smoke | cpu | paper (default: cpu, or paper with --gpu)")
    g.addoption("--dataset", type=_choice("--dataset", DATASETS), default=None, metavar="NAME",
                help=f"run the claims on this dataset: {' | '.join(DATASETS)} (default: the "
                     f"scale's: mnist5k at cpu/smoke, cifar10 at paper)")
    g.addoption("--seeds", type=_positive_int, default=None, metavar="N",
                help="seeds per claim (default: the scale's: smoke 1, cpu 3, paper 1)")
    g.addoption("--data-root", type=Path, default=None, metavar="PATH",
                help=f"where torchvision datasets live or are downloaded (default: "
                     f"$RETHINKBENCH_DATA or {default_data_root()})")
    g.addoption("--imagenet-root", type=Path, default=None, metavar="PATH",
                help="ImageNet in torchvision's layout, for the Table 2 claims (paper scale only; "
                     "default: none, those claims skip)")
    g.addoption("--cache-dir", type=Path, default=Path(DEFAULT_DIR), metavar="PATH",
                help=f"results cache directory (default: {DEFAULT_DIR} in the rootdir)")
    g.addoption("--no-cache", action="store_true", default=False,
                help="train every run, ignore and do not write the results cache (default: off)")
    g.addoption("--clear-cache", action="store_true", default=False,
                help="empty the results cache before the session (default: off)")
    g.addoption("--report-dir", type=Path, default=Path("reports"), metavar="PATH",
                help="where results.json and index.html are written (default: reports/ in the rootdir)")


class PluginState:
    def __init__(self, config):
        opt = config.option
        if opt.gpu:
            import torch

            if not torch.cuda.is_available():
                raise pytest.UsageError(
                    f"--gpu asks for CUDA, but torch.cuda.is_available() is False on this machine "
                    f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run without --gpu "
                    f"for the cpu scale")
        self.scale = get_scale(opt.scale or ("paper" if opt.gpu else "cpu"))
        device = "cuda" if opt.gpu else "cpu"
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if opt.gpu and worker:  # one GPU per xdist worker: gw0 -> cuda:0, gw1 -> cuda:1, ...
            import torch

            device = f"cuda:{int(worker[2:]) % torch.cuda.device_count()}"
        elif worker:
            # CPU workers share the cores: torch's default (all cores per process) makes small
            # matmuls spin against each other, measured 5-20x slower; give each its share.
            import torch

            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        self.device = device
        self.scale = self.scale.with_device(device)
        self.dataset = opt.dataset or self.scale.dataset
        root = Path(config.rootpath)
        self.data_root = opt.data_root or default_data_root()
        self.cache = ResultsCache(_under(root, opt.cache_dir), enabled=not opt.no_cache)
        if opt.clear_cache:
            self.cache.clear()
        self.report_dir = _under(root, opt.report_dir)
        self.seeds = opt.seeds
        self.config = config


def _under(root: Path, p: Path) -> Path:
    return p if p.is_absolute() else root / p


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _compact_benchmark_table(config)
    config.addinivalue_line("markers", "claim(info): this test checks the claim described by the "
                                       "rethinkbench.evidence.ClaimInfo `info`")
    config.addinivalue_line("markers", "models(default=[...], cpu=[...], paper=[...], smoke=[...]): "
                                       "parametrize the test's `model` argument with the scale's list")
    config.addinivalue_line("markers", "scales(*names): run only at these scales (smoke, cpu, "
                                       "paper); skipped elsewhere with the reason")
    state = PluginState(config)
    config.stash[STATE_KEY] = state
    config.stash[SESSION_KEY] = ResultsSession(state.scale.name, state.dataset, state.device)
    config.pluginmanager.register(_Collector(config.stash[SESSION_KEY]), "rethinkbench-collector")


def _compact_benchmark_table(config):
    """Every training run is timed once (one round), so min = max = mean: show one column, not
    eleven, unless the user chose columns. Runs before pytest-benchmark's (trylast) configure."""
    try:
        from pytest_benchmark.utils import parse_columns
    except ImportError:
        return
    if getattr(config.option, "benchmark_columns", None) == parse_columns(",".join(_default_columns())):
        config.option.benchmark_columns = ["min", "rounds"]


def _default_columns():
    from pytest_benchmark.plugin import DEFAULT_COLUMNS
    return DEFAULT_COLUMNS


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def rb_state(pytestconfig) -> PluginState:
    return pytestconfig.stash[STATE_KEY]


@pytest.fixture(scope="session")
def scale(rb_state):
    """The session's ScaleProfile (smoke, cpu or paper), on the session's device."""
    return rb_state.scale


@pytest.fixture(scope="session")
def device(rb_state) -> str:
    return rb_state.device


@pytest.fixture(scope="session")
def data_root(rb_state) -> Path:
    return rb_state.data_root


@pytest.fixture(scope="session")
def dataset(rb_state):
    """The session's dataset (--dataset, else the scale's), loaded once."""
    try:
        return load_dataset(rb_state.dataset, 0, root=rb_state.data_root)
    except Exception as exc:  # a missing dataset is the user's to fix: say which and where
        pytest.fail(f"could not load dataset {rb_state.dataset!r}: {exc}", pytrace=False)


@pytest.fixture
def seeds(rb_state) -> list[int]:
    n = rb_state.seeds or rb_state.scale.default_seeds
    return list(range(n))


@pytest.fixture
def claim(request) -> Evidence:
    """The evidence recorder of this claim test (needs @pytest.mark.claim(INFO))."""
    ev = request.node.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the `claim` fixture but has no "
                                f"@pytest.mark.claim(ClaimInfo(...)) marker")
    return ev


@pytest.fixture
def run(request, rb_state):
    """run(**overrides) -> RunResult: the scale's config for a model, trained or from the cache."""
    return Runner(request, rb_state)


class Runner:
    def __init__(self, request, state: PluginState):
        self.request, self.state = request, state
        self.benchmark = None
        self.benchmark_used = False
        self.timings: list[dict] = []

    def config(self, **overrides):
        overrides.pop("data", None)
        overrides.setdefault("dataset", self.state.dataset)
        return self.state.scale.config(**overrides)

    def __call__(self, **overrides):
        """One run. `keep_model=True` attaches the trained network as `result.model` (stored in
        the cache beside the result). `data=Dataset` trains on that in-memory dataset; its `dataset` name must then
        be a unique "custom:..." id, since the cache knows the data only by that name."""
        return self.many([overrides])[0]

    def many(self, overrides_list):
        overrides_list = [dict(o) for o in overrides_list]
        for o in overrides_list:
            if "data" in o and not str(o.get("dataset", "")).startswith("custom:"):
                raise UsageError(f"run(data=...) needs dataset='custom:<unique id>', got {o.get('dataset')!r}")
        keep = {bool(o.pop("keep_model", False)) for o in overrides_list}
        self._keep_model = True in keep
        cfgs = [self.config(**o) for o in overrides_list]
        self._data = {c.key(): o["data"] for c, o in zip(cfgs, overrides_list) if "data" in o}
        unique = {c.key(): c for c in cfgs}   # a config asked for twice is looked up once
        hits = {k: self.state.cache.get(c, with_model=self._keep_model) for k, c in unique.items()}
        todo = [c for k, c in unique.items() if hits[k] is None]
        if todo:
            for cfg, res in zip(todo, self._timed_train(todo)):
                hits[cfg.key()] = res
        results = [hits[c.key()] for c in cfgs]
        for r in results:
            self._record(r)
        return results

    def _timed_train(self, cfgs):
        """Train `cfgs`; the first training in a test is timed by pytest-benchmark (one round)."""
        def train_all():
            out = []
            for c in cfgs:  # a run that raises is never stored
                out.append(_train_with_progress(c, self.state, self._data.get(c.key()), self._keep_model))
                self.state.cache.put(out[-1])
            return out

        bench = self._benchmark()
        if bench is not None and not self.benchmark_used:
            self.benchmark_used = True
            bench.group = self._claim_id()
            out = bench.pedantic(train_all, rounds=1, iterations=1, warmup_rounds=0)
        else:
            out = train_all()
        self.timings += [{"key": r.config.key(), "run": r.config.label(), "train_seconds": r.wall_seconds}
                         for r in out]
        if bench is not None:
            bench.extra_info["runs"] = self.timings
        return out

    def _benchmark(self):
        if self.benchmark is None:
            try:
                self.benchmark = self.request.getfixturevalue("benchmark")
            except pytest.FixtureLookupError:   # pytest-benchmark not installed: time ourselves
                self.benchmark = False
        return self.benchmark or None

    def _claim_id(self):
        ev = self.request.node.stash.get(EVIDENCE_KEY, None)
        return ev.id if ev is not None else None

    def _record(self, result):
        ev = self.request.node.stash.get(EVIDENCE_KEY, None)
        if ev is None:
            return
        key = result.config.key()
        ev.runs.append(key)
        runs = self.request.node.stash.setdefault(RUNS_KEY, {})
        runs[key] = run_entry(result)


RUNS_KEY = pytest.StashKey[dict]()


def run_entry(result) -> dict:
    d = result.to_dict()
    d.pop("provenance", None)
    per_example = d.pop("per_example_correct", None)
    d["cached"] = result.cached
    d["train_seconds"] = round(result.wall_seconds, 3)
    d["device_kind"] = result.provenance.get("device_kind")
    d["trained_on"] = {k: result.provenance.get(k) for k in ("date", "git_commit", "torch", "device_name")}
    if per_example is not None:
        d["per_example_correct_count"] = sum(per_example)
    return d


def _train_with_progress(cfg, state: PluginState, data=None, keep_model=False):
    from .train import train

    tr = state.config.pluginmanager.get_plugin("terminalreporter")
    capman = state.config.pluginmanager.get_plugin("capturemanager")
    quiet = state.config.option.verbose < 0 or tr is None
    last = [time.perf_counter()]

    def say(msg):
        if quiet:
            return
        if capman is not None:
            with capman.global_and_fixture_disabled():
                tr.write_line(msg)
        else:
            tr.write_line(msg)

    def on_epoch(c, rec):
        if time.perf_counter() - last[0] > PROGRESS_EVERY_S:
            last[0] = time.perf_counter()
            say(f"  … {c.label()}: epoch {rec['epoch']}/{c.max_epochs}, loss {rec['train_loss']:.3f}, "
                f"train acc {rec['train_acc']:.3f}")

    res = train(cfg, dataset=data, data_root=state.data_root, on_epoch=on_epoch, keep_model=keep_model)
    if res.wall_seconds > 2.0:
        fit = f"fit at epoch {res.epochs_to_fit}" if res.fitted else f"not fitted in {len(res.history)} epochs"
        say(f"  trained {cfg.label()}: {fit}, train acc {res.final_train_acc:.4f}, "
            f"test acc {res.final_test_acc:.4f} ({res.wall_seconds:.1f} s)")
    return res


# ----------------------------------------------------------------------------- hooks

def pytest_generate_tests(metafunc):
    m = metafunc.definition.get_closest_marker("models")
    if m is None or "model" not in metafunc.fixturenames:
        return
    scale = metafunc.config.stash[STATE_KEY].scale.name
    names = m.kwargs.get(scale, m.kwargs.get("default"))
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.models has no list for "
                                f"scale {scale!r} and no default")
    metafunc.parametrize("model", names)


def pytest_collection_modifyitems(config, items):
    scale = config.stash[STATE_KEY].scale.name
    for item in items:
        m = item.get_closest_marker("claim")
        if m is not None:
            if not m.args or not isinstance(m.args[0], ClaimInfo):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.claim takes a ClaimInfo, got "
                                        f"{m.args!r}")
            params = dict(getattr(item, "callspec", None).params) if hasattr(item, "callspec") else {}
            item.stash[EVIDENCE_KEY] = Evidence(m.args[0], nodeid=item.nodeid, params=params)
            item.extra_keyword_matches.add(m.args[0].id)   # so `-k Z-F1a-fit` / `-k "A-"` select by claim
        s = item.get_closest_marker("scales")
        if s is not None and scale not in s.args:
            item.add_marker(pytest.mark.skip(
                reason=f"runs at scale {'/'.join(s.args)} only; this session is --scale {scale} "
                       f"(use {'--gpu' if 'paper' in s.args else '--scale ' + s.args[0]})"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    ev = item.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        return
    final = (report.when == "call") or (report.when == "setup" and not report.passed)
    if not final:
        return
    ev_dict = ev.to_dict()
    ev_dict["summary"] = ev.summary()
    payload = {"info": ev.info.to_dict(), "evidence": ev_dict,
               "runs": item.stash.get(RUNS_KEY, {})}
    report.user_properties.append((PROPERTY, payload))


class _Collector:
    """Receives every test report (on the xdist controller too) and keeps the claim payloads."""

    def __init__(self, results: ResultsSession):
        self.results = results

    def pytest_runtest_logreport(self, report):
        payload = next((v for k, v in report.user_properties if k == PROPERTY), None)
        if payload is not None:
            outcome, reason = _outcome(report)
            self.results.add(payload, outcome, reason, round(report.duration, 3))


def _outcome(report) -> tuple[str, str]:
    text = lambda: str(report.longrepr) if report.longrepr else ""
    if hasattr(report, "wasxfail"):
        return ("xfailed", report.wasxfail) if report.skipped else ("xpassed", report.wasxfail)
    if report.skipped:
        lr = report.longrepr
        return "skipped", (lr[2] if isinstance(lr, tuple) else text())
    if report.failed:
        if report.when != "call":
            return "error", text()
        msg = getattr(report.longrepr, "reprcrash", None)
        return "failed", (msg.message if msg is not None else text())
    return "passed", ""


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller writes the results
        return
    rs = session.config.stash[SESSION_KEY]
    if not rs.has_claims:
        return
    state = session.config.stash[STATE_KEY]
    path = rs.write(state.report_dir)
    session.config.stash[REPORT_KEY] = [f"rethinkbench: results in {path}"]
    try:
        from .report import write_report

        html = write_report(path, state.report_dir)
        session.config.stash[REPORT_KEY].append(f"rethinkbench: report in {html}")
    except Exception as exc:  # the report must never hide the results
        session.config.stash[REPORT_KEY].append(f"rethinkbench: could not render the report: {exc!r}")


REPORT_KEY = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, config):
    rs = config.stash[SESSION_KEY]
    if not rs.has_claims:
        return
    tr = terminalreporter
    tr.section("rethinkbench claims")
    for line in rs.table_lines():
        tr.write_line(line)
    tr.write_line(f"runs: {rs.trained} trained, {rs.cached} from the cache "
                  f"({config.stash[STATE_KEY].cache.dir})")


def pytest_unconfigure(config):
    lines = config.stash.get(REPORT_KEY, None)
    if lines:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:  # last lines of the run: where the results and the report are
            for line in lines:
                tr.write_line(line)

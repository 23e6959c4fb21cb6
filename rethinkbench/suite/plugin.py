"""The rethinkbench pytest plugin: options, markers, fixtures, results collection, summary.

Loaded by the project's root conftest.py (`pytest_plugins = ["rethinkbench.suite.plugin"]`).
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

import pytest

from rethinkbench.engine.cache import DEFAULT_DIR, ResultsCache
from rethinkbench.harness.data import DATASETS, default_data_root
from rethinkbench.registry import load_dataset
from rethinkbench.base.errors import RethinkbenchError, UsageError
from rethinkbench.suite.evidence import ClaimInfo, Evidence, is_rejection
from rethinkbench.suite.scales import SCALES, get_scale
from rethinkbench.suite.runner import EVIDENCE_KEY, RUNS_KEY, Runner
from rethinkbench.suite.session import PROPERTY, ResultsSession

SESSION_KEY = pytest.StashKey["ResultsSession"]()
STATE_KEY = pytest.StashKey["PluginState"]()


# ----------------------------------------------------------------------------- option parsers

def _choice(name, allowed):
    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value
    return parse


def _name(option):
    """A non-empty name; whether it is built in or a plugin is decided at configure time, where an
    unknown one gets the registry's message (the built-ins, the installed plugins, how to add one)."""
    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{option} needs a name, got {value!r}")
        return value
    return parse


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr must be a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise argparse.ArgumentTypeError(f"--lr must be a positive number, got {value!r}")
    return x


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
    g.addoption("--dataset", type=_name("--dataset"), default=None, metavar="NAME",
                help=f"run the claims on this dataset: a built-in one ({' | '.join(DATASETS)}), an "
                     f"installed plugin's name (entry point group rethinkbench.datasets) or an "
                     f"import path module:loader (default: the scale's: mnist5k at cpu/smoke, "
                     f"cifar10 at paper)")
    g.addoption("--model", type=_name("--model"), default=None, metavar="NAME",
                help="run the model-generic claims on this model only: a built-in one, an installed "
                     "plugin's name (entry point group rethinkbench.harness.models) or an import path "
                     "module:factory; claims about the paper's own networks are skipped for a "
                     "plugin (default: each claim's paper models)")
    g.addoption("--lr", type=_positive_float, default=None, metavar="X",
                help="SGD learning rate of every run (default: the model's: the paper's for its "
                     "networks, the factory's default_lr for a plugin)")
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
    g.addoption("--plan", action="store_true", default=False,
                help="train nothing: list the runs the selected claims need, which are cached, and "
                     "an estimate of the training time from per-step costs measured on this device "
                     "(default: off; also `rethinkbench plan [pytest args]`)")
    g.addoption("--timing-table", action="store_true", default=False,
                help="print pytest-benchmark's table of the claims' training timings (default: off; "
                     "each run's seconds are in results.json and the report either way)")
    g.addoption("--report-dir", type=Path, default=Path("reports"), metavar="PATH",
                help="where results.json and index.html are written (default: reports/ in the rootdir)")


class PluginState:
    """The session's settings, from the options, checked at configure time.

    Checks that would otherwise fail only after all the training fail here, as usage errors
    (pytest exits 4): the report dir and, unless --no-cache, the cache dir must be creatable and
    writable. Both are therefore created at configure time, on a --collect-only run too (the
    cache dir atomically, with its .gitignore and marker); that is harmless and keeps the check
    honest. Only `--help` skips the checks. --clear-cache refuses a directory that is not the
    cache's own (see rethinkbench.engine.cache), also as a usage error.
    """

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
        self.model = opt.model        # None: each claim's paper models
        self.lr = opt.lr
        self._resolve_plugins(opt)
        self.cache = ResultsCache(_under(root, opt.cache_dir), enabled=not opt.no_cache)
        self.report_dir = _under(root, opt.report_dir)
        if not opt.help:   # `pytest --help` must work in a read-only checkout too
            if self.cache.enabled:
                self._check_writable("--cache-dir", self.cache.dir, self.cache.ensure_dir)
            self._check_writable("--report-dir", self.report_dir,
                                 lambda: self.report_dir.mkdir(parents=True, exist_ok=True))
        if opt.clear_cache:
            try:
                self.cache.clear()
            except (UsageError, OSError) as exc:   # not the cache's directory: nothing was deleted
                raise pytest.UsageError(f"--clear-cache: {exc}") from None
        self.seeds = opt.seeds
        self.config = config
        self.plan = None   # engine.plan.Plan under --plan (set in pytest_configure)

    def _resolve_plugins(self, opt) -> None:
        """Resolve --model and --dataset through the registry and check a plugin before anything
        trains: the dataset's loader output, the model's output shape on a few of its examples, an
        lr for it. Any problem is one usage error naming the plugin (pytest exits 4)."""
        from rethinkbench import registry

        registry.reset()   # a new session sees a changed version attribute or source file
        self.model_plugin = self.dataset_plugin = None
        self.dataset_has_raw = True
        if opt.help:   # `pytest --help --model typo` still shows the help
            return
        try:
            self.dataset_plugin = registry.resolve_dataset(self.dataset)
            if self.model is not None:
                self.model_plugin = registry.resolve_model(self.model)
            shape, classes, n_train, examples = _data_shape(self.dataset_plugin, self.data_root)
            self.dataset_has_raw = examples is None or examples[1]
            if self.model_plugin is not None and not self.model_plugin.builtin:
                registry.check_model(self.model, shape, classes, 1.0,
                                     examples=None if examples is None else examples[0])
                if self.lr is None and self.model_plugin.default_lr is None:
                    raise UsageError(f"model plugin {self.model!r} declares no default_lr: pass --lr X, "
                                     f"or set `default_lr` on the factory (docs/plugins.md)")
                self.scale = self.scale.with_model(self.model, n_train)
        except RethinkbenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    @property
    def not_comparable(self) -> str:
        """Why the paper's numbers cannot be set beside this session's ("" when they can)."""
        why = []
        if self.model_plugin is not None and not self.model_plugin.builtin:
            why.append(f"the model {self.model} is not one of the paper's networks")
        if self.dataset_plugin is not None and not self.dataset_plugin.builtin:
            why.append(f"the dataset {self.dataset} is not the paper's")
        if self.lr is not None:
            why.append(f"--lr {self.lr:g} replaces the paper's learning rates")
        return "; ".join(why)

    def describe_model(self) -> str:
        if self.model_plugin is None:
            return "the paper's networks (each claim's)"
        return self.model_plugin.describe()

    @staticmethod
    def _check_writable(option: str, path: Path, create) -> None:
        """`create()` the directory `path`, then write and delete a probe file in it; a usage error
        naming the option, the path and the OS error otherwise (found now, not after training)."""
        try:
            create()
            fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise pytest.UsageError(
                f"{option} {path} is not a directory this session can create and write: {exc}; "
                f"pass {option} PATH with one that is") from None


def _data_shape(plugin, data_root):
    """(in_shape, num_classes, n_train, examples) of the session's dataset: a built-in one's known
    sizes (nothing is loaded or downloaded), a plugin's by loading and checking it. `examples` is
    None for a built-in dataset, else (a few training inputs, whether it has x_train_raw)."""
    from rethinkbench.engine.plan import KNOWN_DATA

    if plugin.builtin:
        n_train, _, shape, classes = KNOWN_DATA[plugin.name]
        return shape, classes, n_train, None
    ds = load_dataset(plugin.name, 0, root=data_root)
    return ds.in_shape, ds.num_classes, ds.n_train, (ds.x_train[:4], ds.x_train_raw is not None)


def _under(root: Path, p: Path) -> Path:
    return p if p.is_absolute() else root / p


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.stash[CLAIM_ITEMS_KEY] = set()
    _compact_benchmark_table(config)
    config.addinivalue_line("markers", "claim(info): this test checks the claim described by the "
                                       "rethinkbench.suite.evidence.ClaimInfo `info`")
    config.addinivalue_line("markers", "models(default=[...], cpu=[...], paper=[...], smoke=[...]): "
                                       "parametrize the test's `model` argument with the scale's list")
    config.addinivalue_line("markers", "scales(*names): run only at these scales (smoke, cpu, "
                                       "paper); skipped elsewhere with the reason")
    config.addinivalue_line("markers", "requires(*features): the claim needs a model that takes "
                                       "`dropout` ('dropout') or a dataset with uncropped images "
                                       "('raw_images'); skipped, with the reason, for a plugin without")
    state = PluginState(config)
    config.stash[STATE_KEY] = state
    config.stash[SESSION_KEY] = ResultsSession(state.scale.name, state.dataset, state.device,
                                               model=state.model, lr=state.lr,
                                               plugins=_plugins_info(state),
                                               not_comparable=state.not_comparable)
    config.pluginmanager.register(_Collector(config.stash[SESSION_KEY]), "rethinkbench-collector")
    if config.option.plan:
        if getattr(config.option, "numprocesses", None):   # xdist workers would each hold a part
            raise pytest.UsageError("--plan runs in one process (it trains nothing): drop -n/--numprocesses")
        from rethinkbench.engine.plan import Plan, load_priors

        baselines = sorted((Path(config.rootpath) / "reports" / "baselines").glob("*.json"))
        state.plan = Plan(None if config.option.no_cache else state.cache, priors=load_priors(baselines))
        config.stash[PLAN_KEY] = state.plan
    config.stash[TRACKER_KEY] = _ItemTracker()
    config.pluginmanager.register(config.stash[TRACKER_KEY], "rethinkbench-item-tracker")


CLAIM_ITEMS_KEY = pytest.StashKey[set]()


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_benchmark_group_stats(config, benchmarks, group_by):
    """No benchmark table when every timing is a claim's training run (a claim times nothing
    itself: its runs' seconds go to results.json and the report), unless --timing-table asks for
    it. `benchmarks/` and any mixed session keep pytest-benchmark's own grouping and table."""
    claims = config.stash.get(CLAIM_ITEMS_KEY, set())
    if config.option.timing_table or not all(b["fullname"] in claims for b in benchmarks):
        return None
    return []

def _plugins_info(state) -> dict:
    """results.json's `plugins`: the model and dataset plugins of the session (built-ins omitted)."""
    return {kind: p.to_dict() for kind, p in (("model", state.model_plugin), ("dataset", state.dataset_plugin))
            if p is not None and not p.builtin}


def pytest_report_header(config):
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    data = state.dataset_plugin.describe() if state.dataset_plugin is not None else state.dataset
    lines = [f"rethinkbench: scale {state.scale.name}, device {state.device}, dataset {data}, "
             f"model {state.describe_model()}" + (f", lr {state.lr:g}" if state.lr is not None else "")]
    if state.not_comparable:
        lines.append(f"rethinkbench: the paper's numbers are not comparable: {state.not_comparable}")
    return lines


def _compact_benchmark_table(config):
    """Every training run is timed once (one round), so min = max = mean: show one column, not
    eleven, unless the user chose columns. Runs before pytest-benchmark's (trylast) configure.

    Only public surfaces: the `--benchmark-columns` option as pytest parsed it, and the command
    line (pytest-benchmark's own default list is not public and moved between 5.2 and 5.3)."""
    if not config.pluginmanager.hasplugin("benchmark"):
        return
    given = list(config.invocation_params.args) + os.environ.get("PYTEST_ADDOPTS", "").split()
    if any(a == "--benchmark-columns" or a.startswith("--benchmark-columns=") for a in given):
        return
    if hasattr(config.option, "benchmark_columns"):   # its default: a list (4.x) or None (5.3)
        config.option.benchmark_columns = ["min", "rounds"]


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
def dataset(rb_state, pytestconfig):
    """The session's dataset (--dataset, else the scale's), loaded once."""
    try:
        return load_dataset(rb_state.dataset, 0, root=rb_state.data_root)
    except Exception as exc:  # a missing dataset is the user's to fix: say which and where
        plan = pytestconfig.stash.get(PLAN_KEY, None)
        if plan is not None:   # a plan needs only the data's shape: plan now, download later
            from rethinkbench.engine.plan import placeholder_dataset

            plan.notes.append(f"dataset {rb_state.dataset!r} is not available here ({exc}); planned "
                              f"with its known size")
            return placeholder_dataset(rb_state.dataset)
        # A setup failure, so every claim item that needs it is an error, never "not reproduced".
        pytest.fail(f"could not load dataset {rb_state.dataset!r}: {type(exc).__name__}: {exc}",
                    pytrace=False)


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


# ----------------------------------------------------------------------------- hooks

def pytest_generate_tests(metafunc):
    m = metafunc.definition.get_closest_marker("models")
    if m is None or "model" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE_KEY]
    scale = state.scale.name
    names = [state.model] if state.model is not None else m.kwargs.get(scale, m.kwargs.get("default"))
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.models has no list for "
                                f"scale {scale!r} and no default")
    metafunc.parametrize("model", names)


def pytest_collection_modifyitems(config, items):
    state = config.stash[STATE_KEY]
    scale = state.scale.name
    for item in items:
        m = item.get_closest_marker("claim")
        if m is not None:
            if not m.args or not isinstance(m.args[0], ClaimInfo):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.claim takes a ClaimInfo, got "
                                        f"{m.args!r}")
            params = dict(getattr(item, "callspec", None).params) if hasattr(item, "callspec") else {}
            item.stash[EVIDENCE_KEY] = Evidence(m.args[0], nodeid=item.nodeid, params=params,
                                                not_comparable=state.not_comparable)
            item.extra_keyword_matches.add(m.args[0].id)   # so `-k Z-F1a-fit` / `-k "A-"` select by claim
            config.stash[CLAIM_ITEMS_KEY].add(item.nodeid)
            _skip_for_plugins(item, m.args[0], state)
        s = item.get_closest_marker("scales")
        if s is not None and scale not in s.args:
            item.add_marker(pytest.mark.skip(
                reason=f"runs at scale {'/'.join(s.args)} only; this session is --scale {scale} "
                       f"(use {'--gpu' if 'paper' in s.args else '--scale ' + s.args[0]})"))


def _skip_for_plugins(item, info: ClaimInfo, state) -> None:
    """Skip, saying why, a claim about the paper's own networks when --model is a plugin, and a
    claim needing what the session's plugin model or dataset lacks (the `requires` marker)."""
    plugin = state.model_plugin
    if info.paper_specific and plugin is not None and not plugin.builtin:
        item.add_marker(pytest.mark.skip(
            reason=f"{info.id} is about the paper's own networks ({info.paper_specific}); this "
                   f"session's --model {state.model} is not one of them"))
        return
    needs = item.get_closest_marker("requires")
    for feature in (needs.args if needs is not None else ()):
        if feature == "dropout" and plugin is not None and "dropout" not in plugin.accepts:
            item.add_marker(pytest.mark.skip(
                reason=f"{info.id} varies dropout, and model plugin {state.model!r}'s factory has no "
                       f"`dropout` keyword (add `dropout: float = 0.0` to run it)"))
        elif feature == "raw_images" and not state.dataset_has_raw:
            item.add_marker(pytest.mark.skip(
                reason=f"{info.id} needs random crops, and dataset plugin {state.dataset!r} gives no "
                       f"uncropped images (Dataset.x_train_raw)"))
        elif feature not in ("dropout", "raw_images"):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.requires knows 'dropout' and "
                                    f"'raw_images', got {feature!r}")


# tryfirst: the outermost wrapper, so the report it reads is final (xfail already applied).
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
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
    # Decided here, where the exception is at hand (an xdist controller only sees the report).
    result, reason = _outcome(report, call.excinfo)
    payload = {"info": ev.info.to_dict(), "evidence": ev_dict,
               "runs": item.stash.get(RUNS_KEY, {}), "outcome": result, "reason": reason}
    report.user_properties.append((PROPERTY, payload))


class _Collector:
    """Receives every test report (on the xdist controller too) and keeps the claim payloads."""

    def __init__(self, results: ResultsSession):
        self.results = results

    def pytest_runtest_logreport(self, report):
        payload = next((v for k, v in report.user_properties if k == PROPERTY), None)
        if payload is not None:
            self.results.add(payload, payload["outcome"], payload["reason"], round(report.duration, 3))


REASON_LIMIT = 1000   # characters of an exception message kept in results.json


def _outcome(report, excinfo) -> tuple[str, str]:
    """(outcome, reason) of a claim item, as results.json records them.

    Only the claim decides that it did not reproduce: a failed `assert` or `claim.check` in the
    call ("failed"), or `claim.not_reproduced` (a strict xfail, "xfailed"). Every other exception,
    in setup or call, is a failure of the harness ("error"): its reason is the exception's type and
    message; the traceback stays in pytest's own output.
    """
    exc = excinfo.value if excinfo is not None else None
    if hasattr(report, "wasxfail"):
        if report.skipped and exc is not None and not (
                isinstance(exc, pytest.xfail.Exception) or is_rejection(exc)):
            return "error", _exception_text(exc)   # an xfail marker swallowed a harness error
        # pytest < 8 prefixes an imperative xfail's reason with "reason: "; 8 and later do not.
        reason = report.wasxfail.removeprefix("reason: ")
        return ("xfailed", reason) if report.skipped else ("xpassed", reason)
    if report.skipped:
        lr = report.longrepr
        return "skipped", (lr[2] if isinstance(lr, tuple) else str(lr or ""))
    if report.failed:
        if exc is None:   # a strict xfail marker whose test passed ("[XPASS(strict)] ...")
            return "failed", str(report.longrepr or "")
        if report.when == "call" and is_rejection(exc):
            return "failed", _exception_text(exc)
        return "error", _exception_text(exc)
    return "passed", ""


def _exception_text(exc: BaseException) -> str:
    """`DataError: MNIST not found under ...`; a claim's own rejection or a pytest.fail is its
    message alone (it already reads as a sentence)."""
    if isinstance(exc, pytest.fail.Exception):
        text = str(exc.msg or "")
    elif isinstance(exc, (AssertionError, pytest.xfail.Exception)) and str(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 1] + "…"


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller writes the results
        return
    if PLAN_KEY in session.config.stash:   # --plan trained nothing: no results to write
        return
    rs = session.config.stash[SESSION_KEY]
    unreported = session.config.stash[TRACKER_KEY].unreported(session)
    if unreported:
        # A test that ran nowhere (a worker died, a report could not be sent) must not vanish from
        # the results while the session looks green: the results name it and the exit status fails.
        rs.unreported = unreported
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not rs.has_claims:
        return
    state = session.config.stash[STATE_KEY]
    path = rs.write(state.report_dir)
    session.config.stash[REPORT_KEY] = [f"rethinkbench: results in {path}"]
    try:
        from rethinkbench.report import write_report

        html = write_report(path, state.report_dir)
        session.config.stash[REPORT_KEY].append(f"rethinkbench: report in {html}")
    except Exception as exc:  # the report must never hide the results
        session.config.stash[REPORT_KEY].append(f"rethinkbench: could not render the report: {exc!r}")


REPORT_KEY = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, config):
    plan = config.stash.get(PLAN_KEY, None)
    if plan is not None:
        _print_plan(terminalreporter, config, plan)
        return
    rs = config.stash[SESSION_KEY]
    for nodeid in getattr(rs, "unreported", []):
        terminalreporter.write_line(f"rethinkbench: ERROR: {nodeid} never reported a result (its "
                                    f"worker died or its report could not be sent)", red=True)
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


TRACKER_KEY = pytest.StashKey["_ItemTracker"]()


class _ItemTracker:
    """Which collected tests delivered a final report, on the controller (plain run or xdist).

    With pytest-xdist the controller collects nothing itself: each worker tells it which test ids
    it collected (`pytest_xdist_node_collection_finished`, a public xdist hook)."""

    def __init__(self):
        self.collected: dict[str, None] = {}   # ordered set of node ids
        self.reported: set[str] = set()

    def pytest_collection_finish(self, session):
        if not hasattr(session.config, "workerinput"):
            self.collected.update(dict.fromkeys(item.nodeid for item in session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.collected.update(dict.fromkeys(ids))

    def pytest_runtest_logreport(self, report):
        # The report that decides an item: its call, or a setup that did not pass (skip, error).
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.reported.add(report.nodeid)

    def unreported(self, session) -> list[str]:
        if session.config.option.collectonly:
            return []
        if session.shouldstop or session.shouldfail or session.exitstatus == pytest.ExitCode.INTERRUPTED:
            return []   # -x, --maxfail, Ctrl-C: tests left unrun on purpose
        return [nodeid for nodeid in self.collected if nodeid not in self.reported]


# ----------------------------------------------------------------------------- --plan

PLAN_KEY = pytest.StashKey["Plan"]()


def _print_plan(tr, config, plan) -> None:
    from rethinkbench.engine.plan import CostTable

    state = config.stash[STATE_KEY]
    tr.section("rethinkbench plan")
    if plan.runs:
        tr.write_line(f"timing a few steps of each network on {state.device} ...")
        plan.estimate(CostTable(state.device))
    for line in plan.lines(state.device):
        tr.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Under --plan a claim test runs only to say which runs it needs: `run` records them and hands
    back placeholder results, whatever the test then does with them is ignored, and a test that
    trains nothing (theory, kernels) is not executed at all."""
    plan = pyfuncitem.config.stash.get(PLAN_KEY, None)
    if plan is None:
        return None
    if "run" not in pyfuncitem.fixturenames:
        plan.not_executed.append(pyfuncitem.nodeid)
        return True
    plan.executed.append(pyfuncitem.nodeid)
    import inspect   # the test's own arguments, as pytest passes them (public surfaces only)

    args = {name: pyfuncitem.funcargs[name] for name in inspect.signature(pyfuncitem.obj).parameters
            if name in pyfuncitem.funcargs}
    try:
        pyfuncitem.obj(**args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:   # placeholder results make claims fail or skip: not a finding
        pass
    return True

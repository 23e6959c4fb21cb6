"""--executor's options and settings: every promised usage error, before anything trains (no
cluster is started here)."""
from __future__ import annotations

import sys

import pytest

from executor_helpers import run_claims
from rethinkbench.engine.executors import CohortTask, ExecutorError, check_resources, make_executor
from rethinkbench.engine.executors.settings import check_settings, load_settings


def test_settings_accept_each_backends_example(tmp_path):
    path = tmp_path / "ex.toml"
    path.write_text('[executor]\ncpus_per_cohort = 2\ngpus_per_cohort = 0.5\nmax_cohort = 8\n'
                    '[ray]\naddress = "auto"\nmax_retries = 2\nruntime_env = { working_dir = "." }\n'
                    '[submitit]\ncluster = "slurm"\nfolder = "/shared/rb"\npartition = "gpu"\n'
                    'setup = ["module load cuda"]\nslurm = { account = "me" }\n')
    s = load_settings(path)
    assert s["executor"]["gpus_per_cohort"] == 0.5 and s["ray"]["runtime_env"] == {"working_dir": "."}
    assert s["submitit"]["slurm"] == {"account": "me"}


@pytest.mark.parametrize("data, shown", [
    ({"cluster": {}}, "unknown table [cluster]; known: [executor], [ray], [submitit]"),
    ({"ray": {"adress": "auto"}}, "unknown key 'adress' in [ray]; known: address,"),
    ({"ray": {"max_retries": "3"}}, "[ray] max_retries must be int, got '3'"),
    ({"ray": {"spread": 1}}, "[ray] spread must be bool, got 1"),
    ({"executor": {"max_cohort": True}}, "[executor] max_cohort must be int, got True"),
    ({"executor": {"max_cohort": 0}}, "[executor] max_cohort must be at least 1, got 0"),
    ({"executor": {"gpus_per_cohort": -1}}, "[executor] gpus_per_cohort must be >= 0, got -1"),
    ({"ray": 3}, "ray must be a table"),
])
def test_bad_settings_name_the_value_and_what_is_allowed(data, shown):
    with pytest.raises(ExecutorError) as err:
        check_settings(data, "ex.toml")
    assert shown in str(err.value)


def test_a_settings_file_that_is_not_toml_or_missing_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ray\n")
    with pytest.raises(ExecutorError, match="bad.toml is not valid TOML"):
        load_settings(bad)
    with pytest.raises(ExecutorError, match="missing.toml: cannot read it"):
        load_settings(tmp_path / "missing.toml")


def test_python_310_without_tomli_is_told_to_install_it(tmp_path, monkeypatch):
    path = tmp_path / "ex.toml"
    path.write_text("[ray]\n")
    monkeypatch.setattr(sys, "version_info", (3, 10, 0))
    monkeypatch.setitem(sys.modules, "tomli", None)   # `import tomli` raises ImportError
    with pytest.raises(ExecutorError, match=r"Python 3.10 needs the `tomli` package \(pip install tomli\)"):
        load_settings(path)


def test_a_plan_nobody_can_schedule_is_refused_before_sending():
    tasks = [CohortTask(0, [], gpus=1.0), CohortTask(1, [], gpus=1.0)]
    with pytest.raises(ExecutorError, match=r"each need 1 GPU, but the cluster has 0 GPU .*nothing was sent"):
        check_resources(tasks, {"CPU": 4.0, "GPU": 0.0, "nodes": 2}, "the cluster")
    with pytest.raises(ExecutorError, match="each need 8 CPU, but the cluster has 4 CPU"):
        check_resources([CohortTask(0, [], cpus=8)], {"CPU": 4.0, "GPU": 0.0}, "the cluster")
    check_resources(tasks, {"CPU": 4.0, "GPU": 2.0}, "the cluster")   # schedulable: no error
    check_resources(tasks, {"CPU": None, "GPU": None}, "Slurm")       # unknown until Slurm decides


def test_unknown_backend_is_named():
    with pytest.raises(ExecutorError, match="unknown executor 'dask'; known: local, ray, submitit"):
        make_executor("dask")


@pytest.mark.parametrize("args, shown", [
    (["--executor", "dask"], "--executor must be one of local, ray, submitit; got 'dask'"),
    (["--executor-address", "auto"], "--executor-address and --executor-config need --executor NAME"),
    (["--executor", "local", "--executor-address", "auto"], "--executor-address is Ray's"),
    (["--executor", "local", "-n", "2"], "--executor local spreads the runs itself: drop -n"),
])
def test_option_misuse_is_a_usage_error(tmp_path, args, shown):
    res = run_claims(tmp_path, *args, timeout=120)
    assert res.returncode == 4, res.stdout[-1500:] + res.stderr[-1500:]
    assert shown in res.stderr


def test_a_missing_extra_is_a_usage_error_naming_it(tmp_path):
    # A `ray` module that cannot be imported, first on the path: as if the extra were not installed.
    fake = tmp_path / "noray"
    fake.mkdir()
    (fake / "ray.py").write_text("raise ImportError('no ray here')\n")
    (fake / "submitit.py").write_text("raise ImportError('no submitit here')\n")
    for backend, extra in (("ray", "ray"), ("submitit", "slurm")):
        res = run_claims(tmp_path, "--executor", backend, timeout=120, path_first=fake)
        assert res.returncode == 4, res.stderr[-1500:]
        assert f'--executor {backend} needs the optional extra: pip install -e ".[{extra}]"' in res.stderr


def test_a_run_that_fails_on_the_executor_is_an_error_verdict_not_a_rejection(tmp_path):
    # lr 1e9 makes the loss NaN on the first steps: the worker answers an error for that run, and
    # the claim that needs it is an error of the tool, never "not reproduced".
    import json
    res = run_claims(tmp_path, "-k", "mlp3x512 and true_labels", "--lr", "1e9", "--executor", "local",
                     timeout=200)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    (item,) = [i for c in data["claims"] for i in c["items"]]
    assert item["outcome"] == "error", item
    assert "failed on the executor: TrainingDiverged" in item["reason"] and "on node" in item["reason"]
    rec = json.loads((tmp_path / "rep" / "executor.json").read_text())
    assert list(rec["errors"]) == rec["log"][0]["failed"] and len(rec["errors"]) == 1
    assert not list((tmp_path / "cache").glob("*.json"))   # failures are never cached

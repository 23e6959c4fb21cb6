"""--executor ray on a real local Ray cluster: a head (no CPUs, so it schedules nothing itself)
and two worker nodes of one CPU each, all on 127.0.0.1, started once for this module.

Pitfalls this module avoids (measured when issue 16 was filed): Ray binds the machine's external
address unless told otherwise (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every address on
loopback, here and in the pytest subprocesses), `ray.init()` without an address joins a leftover
cluster (every connection here names the cluster's address), and Unix socket paths over 107 bytes
fail (Ray's temp dir is a short one under /tmp, never pytest's tmp_path). The module starts a
cluster, so in a parallel run it stays in one worker with the other cluster tests (the `cluster`
marker and xdist_group "cluster" under --dist loadgroup, `pytest`'s default; skipped otherwise).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from conftest import cluster_skip_reason
from executor_helpers import claim_items, executor_record, run_claims

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Read by Ray when it is imported (ray_constants): set before the import, or Ray resolves
# 127.0.0.1 to the machine's external address and this process never reaches the cluster.
os.environ.update(LOOPBACK_ENV)
ray = pytest.importorskip("ray", reason="the Ray executor's tests need the extra: pip install -e \".[ray]\"")
pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


@pytest.fixture(scope="module")
def cluster(request):
    if cluster_skip_reason(request.config):
        pytest.skip(cluster_skip_reason(request.config))
    from ray.cluster_utils import Cluster
    temp = tempfile.mkdtemp(prefix="rb-ray-", dir="/tmp")   # short: socket paths < 108 bytes
    saved = {"RAY_TMPDIR": os.environ.get("RAY_TMPDIR")}
    os.environ["RAY_TMPDIR"] = temp
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                      "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The selection trained in the test loop as usual (no executor): what Ray must reproduce."""
    tmp = tmp_path_factory.mktemp("local")
    res = run_claims(tmp)
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    return tmp


def _config(tmp, text: str):
    path = tmp / "executor.toml"
    path.write_text(text)
    return str(path)


def test_ray_run_gives_the_local_results_with_cohorts_on_two_nodes(cluster, local_reference, tmp_path):
    # Cohorts of at most 2 runs: the five runs become three tasks, spread over both worker nodes.
    cfg = _config(tmp_path, "[executor]\nmax_cohort = 2\n")
    res = run_claims(tmp_path, "--executor", "ray", "--executor-address", cluster.address,
                     "--executor-config", cfg, env={**LOOPBACK_ENV, "RAY_TMPDIR": os.environ["RAY_TMPDIR"]})
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    # Same items, outcomes, verdicts, measured numbers and bit-identical histories.
    local, remote = claim_items(local_reference / "rep"), claim_items(tmp_path / "rep")
    assert local.keys() == remote.keys() and len(local) == 5
    for nodeid in local:
        assert remote[nodeid] == local[nodeid], nodeid
    rec = executor_record(tmp_path / "rep")
    trained = [k for c in rec["log"] for k in c["keys"]]
    assert len(trained) == len(set(trained)) == rec["to_train"] == 5   # every key trained exactly once
    nodes = {c["node"]["node"] for c in rec["log"]}
    assert len(nodes) >= 2 and rec["cohorts"] == 3 and not rec["errors"]
    # Provenance names the node; the claims trained nothing on the driver (the summary line).
    entry = json.loads((tmp_path / "cache" / f"{trained[0]}.json").read_text())
    assert entry["result"]["provenance"]["executor"]["node"] in nodes
    assert "runs: 5 trained, 0 from the cache" in res.stdout
    # A rerun finds everything in the cache: nothing is sent again.
    again = run_claims(tmp_path, "--executor", "local")
    assert "nothing to train: every planned run is in the cache" in again.stdout, again.stdout[-2000:]


def test_a_gpu_plan_on_a_cluster_without_gpus_is_an_error_not_a_hang(cluster, tmp_path):
    cfg = _config(tmp_path, "[executor]\ngpus_per_cohort = 1\n")
    res = run_claims(tmp_path, "--executor", "ray", "--executor-address", cluster.address,
                     "--executor-config", cfg, env={**LOOPBACK_ENV, "RAY_TMPDIR": os.environ["RAY_TMPDIR"]},
                     timeout=120)
    assert res.returncode == 4, res.stdout[-2000:] + res.stderr[-2000:]
    assert "each need 1 GPU, but Ray" in res.stderr and "has 0 GPU" in res.stderr
    assert "nothing was sent" in res.stderr
    assert not list((tmp_path / "cache").glob("*.json"))


def _connect(cluster):
    if not ray.is_initialized():
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)


def _smoke_configs(n: int):
    from rethinkbench.suite.scales import get_scale
    return [get_scale("smoke").config(model="mlp1x512", seed=s, dataset="mnist5k") for s in range(n)]


def test_ctrl_c_cancels_what_is_outstanding_and_keeps_finished_runs(cluster, tmp_path):
    from rethinkbench.engine.cache import ResultsCache
    from rethinkbench.engine.executors import dispatch, make_tasks
    from rethinkbench.engine.executors.ray import RayExecutor

    _connect(cluster)
    cfgs = _smoke_configs(6)
    tasks = make_tasks(cfgs, max_cohort=1)
    cache = ResultsCache(tmp_path / "cache")
    executor = RayExecutor()

    def interrupt_after_first(line: str):   # Ctrl-C right after the first cohort arrived
        if "runs 1/" in line:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        dispatch(executor, tasks, cache, say=interrupt_after_first)
    assert executor.running() == 0   # the rest were cancelled
    kept = [c for c in cfgs if cache.get(c) is not None]
    assert len(kept) == 1 and cache.get(kept[0]).history   # the finished run is whole
    # A rerun sends only the rest.
    rest = [c for c in cfgs if cache.get(c) is None]
    done = dispatch(executor, make_tasks(rest, max_cohort=1), cache, say=lambda line: None)
    assert len(done.results) == 5 and not done.errors
    assert all(cache.get(c) is not None for c in cfgs)


def test_a_killed_worker_node_has_its_cohort_retried_and_nothing_is_lost(cluster, tmp_path):
    from rethinkbench.engine.cache import ResultsCache
    from rethinkbench.engine.executors import dispatch, make_tasks
    from rethinkbench.engine.executors.ray import RayExecutor

    _connect(cluster)
    # Six cohorts, each a run of 100 epochs: when the first answers, five are outstanding and the
    # other node (one CPU) is training one of them. That node is killed mid-cohort.
    cfgs = [c.replace(max_epochs=100, stop_at_fit=False) for c in _smoke_configs(6)]
    cache = ResultsCache(tmp_path / "cache")
    executor = RayExecutor(max_retries=3)
    workers = {n.node_id: n for n in cluster.list_all_nodes() if n is not cluster.head_node}
    killed = []

    def kill_the_other_node_after_first(line: str):
        if "runs 1/" in line and not killed:
            (first,) = [cache.get(c) for c in cfgs if cache.get(c) is not None]
            victim = next(i for i in workers if i != first.provenance["executor"]["node"])
            killed.append(victim)
            cluster.remove_node(workers[victim], allow_graceful=False)
    done = dispatch(executor, make_tasks(cfgs, max_cohort=1), cache, say=kill_the_other_node_after_first)
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")   # back to two workers
    assert killed and not done.errors, done.errors
    assert len(done.results) == 6 and all(cache.get(c) is not None for c in cfgs)   # nothing lost
    # Which cohort the dead node was training cannot be told from here without a race (a result
    # finished just before the kill still arrives after it), so the check is the user's: every
    # run came back, none as an error, after a node died with work outstanding.

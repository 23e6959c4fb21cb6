"""--executor submitit: submitit's local executor runs the jobs as real subprocesses (no Slurm
here), and the Slurm parameters of --executor-config reach the sbatch script (submitit's own mocked
Slurm, for the flags only)."""
from __future__ import annotations


import pytest

from conftest import cluster_skip_reason
from executor_helpers import claim_items, executor_record, run_claims
from rethinkbench.engine.executors import ExecutorError

submitit = pytest.importorskip("submitit", reason="the submitit executor's tests need the extra: "
                                                  "pip install -e \".[slurm]\"")
pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

# Two runs: a small selection for the equality check (each job is a fresh Python with torch).
SMALL = ["-k", "mlp3x512 and (true_labels or random_labels)"]


def test_submitit_local_jobs_give_the_local_results(tmp_path, request):
    if cluster_skip_reason(request.config):
        pytest.skip(cluster_skip_reason(request.config))
    local = run_claims(tmp_path / "local", *SMALL)
    assert local.returncode in (0, 1), local.stdout[-2000:] + local.stderr[-2000:]
    cfg = tmp_path / "ex.toml"
    cfg.write_text(f'[executor]\nmax_cohort = 1\n[submitit]\ncluster = "local"\n'
                   f'folder = "{tmp_path / "jobs"}"\ntimeout_min = 10\n')
    res = run_claims(tmp_path / "sub", *SMALL, "--executor", "submitit", "--executor-config", str(cfg))
    assert res.returncode in (0, 1), res.stdout[-2000:] + res.stderr[-2000:]
    a, b = claim_items(tmp_path / "local" / "rep"), claim_items(tmp_path / "sub" / "rep")
    assert a.keys() == b.keys() and len(a) == 2
    assert all(a[k] == b[k] for k in a)   # outcomes, verdicts, numbers, bit-identical histories
    rec = executor_record(tmp_path / "sub" / "rep")
    assert rec["cohorts"] == 2 and not rec["errors"]
    pids = {c["node"]["pid"] for c in rec["log"]}
    assert len(pids) == 2   # two real job processes, neither of them the driver


def test_slurm_parameters_reach_the_sbatch_script(tmp_path):
    from submitit.slurm.test_slurm import mocked_slurm   # submitit's own fake sbatch/sacct
    from rethinkbench.engine.executors.submitit import SubmititExecutor

    with mocked_slurm():
        ex = SubmititExecutor(tmp_path / "jobs", cluster="slurm", partition="gpu", timeout_min=90,
                              gpus_per_task=1, cpus_per_task=4, array_parallelism=2,
                              setup=["module load cuda/12"], slurm={"account": "lab"},
                              folder_is_shared=True)   # tmp_path is under /tmp
        with ex.ex.batch():
            jobs = [ex.ex.submit(print, i) for i in range(5)]
        script = jobs[0].paths.submission_file.read_text()
    for flag in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --array=0-4%2", "#SBATCH --account=lab",
                 "module load cuda/12"):
        assert flag in script, (flag, script)


def test_a_node_local_job_folder_is_refused_for_slurm():
    from rethinkbench.engine.executors.submitit import SubmititExecutor

    with pytest.raises(ExecutorError, match=r"executor folder /tmp/rb-jobs is node-local .* share"):
        SubmititExecutor("/tmp/rb-jobs", cluster="slurm")

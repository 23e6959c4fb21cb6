"""scripts/kernel_60k.py at a small n: the full-size measurement's script runs and writes its JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_file_module

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kernel_60k.py"


@pytest.fixture(scope="module")
def script():
    return load_file_module(SCRIPT, "kernel_60k")


def test_script_runs_the_tiled_solve_and_writes_its_json(tmp_path):
    """End to end in a fresh process, as the 60k run is: mnist5k (embedded, no download), n = 2,000
    in tiles of 512 (not a divisor of n, so the last tile is short)."""
    out = tmp_path / "sub" / "k.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dataset", "mnist5k", "--n", "2000",
                           "--n-test", "300", "--tile", "512", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "cholesky tile column 4/4" in proc.stderr           # progress, one line per tile column
    r = json.loads(out.read_text())
    assert (r["dataset"], r["n"], r["n_test"], r["d"]) == ("mnist5k", 2000, 300, 784)
    assert (r["solver"], r["tile"], r["device"], r["method"]) == ("tiled", 512, "cpu", "cholesky")
    assert set(r["seconds"]) == {"load", "gram", "factor", "solve", "predict", "total"}
    assert all(v >= 0 for v in r["seconds"].values())
    assert r["storage_gb"] < r["dense_gb"] == pytest.approx(2000**2 * 8 / 1e9)
    assert r["peak_rss_gb"] > r["storage_gb"]
    assert r["train_error"] == 0.0 and r["max_train_residual"] < 1e-6
    assert 0.0 <= r["test_error"] < 0.2                           # 2,000 real digits
    assert r["rkhs_norm"] == pytest.approx(r["rkhs_norm_check"], rel=1e-6)
    assert len(r["loadavg_before"]) == len(r["loadavg_after"]) == 3
    assert r["cpu_model"] and r["cpu_count"] >= 1 and r["torch_threads"] >= 1
    assert not list(out.parent.glob("*.tmp"))


def test_script_options(script, tmp_path):
    args = script.parse_args([str(tmp_path / "o.json")])
    assert (args.dataset, args.n, args.solver, args.tile, args.gamma) == (
        "fashion_mnist", None, "tiled", 2048, 0.02)
    for bad in (["--tile", "0"], ["--n", "-5"], ["--n", "1.5"], ["--solver", "blockwise"],
                ["--gamma", "0"]):
        with pytest.raises(SystemExit):
            script.parse_args(bad + ["o.json"])


def test_script_refuses_more_points_than_the_dataset_has(script, tmp_path):
    with pytest.raises(SystemExit, match="only 4000 training images"):
        script.main(["--dataset", "mnist5k", "--n", "4001", "--quiet", str(tmp_path / "o.json")])
    assert not (tmp_path / "o.json").exists()

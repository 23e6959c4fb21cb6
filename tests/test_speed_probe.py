"""base/speed.py and where its number goes: a cpu- or paper-scale session that trained runs on
the CPU records the machine-speed probe in its provenance (compare divides the machine out of its
timing check with it, tests/test_compare.py); smoke and GPU sessions do not spend the time."""
from __future__ import annotations

import torch

from rethinkbench.base import speed
from rethinkbench.report.results_io import check_results
from rethinkbench.suite.session import ResultsSession


def test_the_probe_times_real_work_and_leaves_the_caller_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    one = speed.cpu_speed_probe(steps=2, repeats=1)
    assert one > 0 and torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)          # the global RNG untouched
    # More steps take longer: the number is work timed, not a constant.
    assert speed.cpu_speed_probe(steps=40, repeats=1) > one


def test_a_cpu_session_that_trained_records_the_probe_once(monkeypatch):
    calls = []
    monkeypatch.setattr("rethinkbench.suite.session.cpu_speed_probe", lambda: calls.append(1) or 0.0812345)
    session = ResultsSession("cpu", "mnist5k", "cpu")
    session.trained = 3
    first, second = session.results(), session.results()
    assert first["provenance"]["speed_probe_seconds"] == second["provenance"]["speed_probe_seconds"] == 0.08123
    assert calls == [1]
    check_results(first)                       # the schema knows the field


def test_smoke_gpu_and_untrained_sessions_do_not_probe(monkeypatch):
    monkeypatch.setattr("rethinkbench.suite.session.cpu_speed_probe", lambda: 1 / 0)
    # No GPU here: the provenance of a cuda session without the device lookup.
    monkeypatch.setattr("rethinkbench.suite.session.provenance",
                        lambda device="cpu": {"date": "2026-11-30", "device": device})
    for scale, device, trained in (("smoke", "cpu", 3), ("paper", "cuda", 3), ("cpu", "cpu", 0)):
        session = ResultsSession(scale, "mnist5k", device)
        session.trained = trained
        assert "speed_probe_seconds" not in session.results()["provenance"]

"""The training loop (rethinkbench/engine/train.py) at smoke size: mlp1x512 at 1/4 width on 100 mnist5k
digits, a few epochs (well under a second a run)."""
from __future__ import annotations

import io
import json
import math
import random

import numpy as np
import pytest
import torch

import rethinkbench as rb
from rethinkbench.harness import data
from rethinkbench.engine.train import RunResult, lr_at

pytestmark = pytest.mark.usefixtures("single_thread", "fast_mnist5k")

# lr 0.1 and batch 32: fits the 100 digits in ~13 epochs (4 steps an epoch).
BASE = dict(model="mlp1x512", width=0.25, n_train=100, lr=0.1, batch_size=32, max_epochs=30)


def cfg(**kw) -> rb.RunConfig:
    return rb.RunConfig(**{**BASE, **kw})


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def user_dataset(n=60, shape=(1, 8, 8), num_classes=3, fill=None, seed=0) -> rb.Dataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=gen)
    if fill is not None:
        x = torch.full_like(x, fill)
    y = torch.arange(n) % num_classes
    return rb.Dataset(x, y, torch.randn((20, *shape), generator=gen), torch.arange(20) % num_classes,
                      num_classes=num_classes, name="mine")


# ----------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("kw", [
    dict(corruption="partial_labels", level=0.5),
    dict(random_crop=True, dropout=0.3),
    dict(corruption="random_pixels", weight_decay=1e-3),
], ids=["partial_labels", "crop+dropout", "random_pixels+wd"])
def test_same_config_same_numbers_bit_for_bit(kw):
    c = cfg(max_epochs=4, stop_at_fit=False, record_per_example=True, **kw)
    a, b = rb.train(c), rb.train(c)
    assert without_seconds(a.history) == without_seconds(b.history)
    assert a.per_example_correct == b.per_example_correct
    assert (a.final_train_acc, a.final_test_acc, a.best_test_acc) == (b.final_train_acc, b.final_test_acc,
                                                                      b.best_test_acc)


@pytest.mark.parametrize("kw", [dict(), dict(corruption="random_labels"), dict(random_crop=True)])
def test_different_seed_different_numbers(kw):
    a = rb.train(cfg(max_epochs=2, stop_at_fit=False, seed=0, **kw))
    b = rb.train(cfg(max_epochs=2, stop_at_fit=False, seed=1, **kw))
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in b.history]


def test_global_rngs_are_untouched(monkeypatch):
    """Library code never seeds or draws from the global RNGs (torch, NumPy, random), loading
    included: the dataset memo is emptied so the load happens inside."""
    monkeypatch.setattr(data, "_MEMO", {})
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    before = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    rb.train(cfg(max_epochs=2, stop_at_fit=False, dropout=0.2, random_crop=True,
                 corruption="partial_labels", level=0.3))
    assert torch.equal(torch.get_rng_state(), before[0])
    after_np = np.random.get_state()
    assert after_np[0] == before[1][0] and np.array_equal(after_np[1], before[1][1]) \
        and after_np[2:] == before[1][2:]
    assert random.getstate() == before[2]


def test_global_rng_state_does_not_change_the_run():
    torch.manual_seed(1)
    a = rb.train(cfg(max_epochs=2, stop_at_fit=False, dropout=0.3))
    torch.manual_seed(2)
    torch.rand(1000)
    b = rb.train(cfg(max_epochs=2, stop_at_fit=False, dropout=0.3))
    assert without_seconds(a.history) == without_seconds(b.history)


# ----------------------------------------------------------------------------- fitting and budgets

def test_steps_and_epochs_to_fit_match_the_history():
    res = rb.train(cfg())
    assert res.fitted and res.epochs_to_fit is not None
    fit = res.history[res.epochs_to_fit - 1]
    assert fit["epoch"] == res.epochs_to_fit and fit["step"] == res.steps_to_fit
    assert fit["train_acc_full"] == 1.0
    assert res.steps_to_fit == res.epochs_to_fit * math.ceil(100 / 32)
    assert all(h.get("train_acc_full", 0.0) < 1.0 for h in res.history[:res.epochs_to_fit - 1])
    assert len(res.history) == res.epochs_to_fit, "stop_at_fit: no epoch after the fit"
    assert res.final_train_acc == 1.0


def test_no_stop_at_fit_trains_the_whole_budget():
    res = rb.train(cfg(max_epochs=20, stop_at_fit=False))
    assert len(res.history) == 20 and res.history[-1]["step"] == 20 * 4
    assert res.fitted and res.epochs_to_fit < 20
    assert res.history[res.epochs_to_fit - 1]["train_acc_full"] == 1.0


def test_a_run_that_never_fits():
    res = rb.train(cfg(max_epochs=2, corruption="random_labels"))
    assert not res.fitted and res.epochs_to_fit is None and res.steps_to_fit is None
    assert len(res.history) == 2 and res.final_train_acc < 1.0


@pytest.mark.parametrize("max_steps", [1, 6, 8])
def test_max_steps_budget_is_respected(max_steps):
    res = rb.train(cfg(max_steps=max_steps, stop_at_fit=False))
    assert res.history[-1]["step"] == max_steps
    assert len(res.history) == math.ceil(max_steps / 4)
    assert [h["epoch"] for h in res.history] == list(range(1, len(res.history) + 1))


def test_history_records():
    res = rb.train(cfg(max_epochs=3, stop_at_fit=False, decay_steps=2, lr_decay=0.5))
    for i, h in enumerate(res.history, 1):
        assert {"epoch", "step", "train_loss", "train_acc", "test_acc", "seconds", "lr"} <= set(h)
        assert h["epoch"] == i and h["step"] == 4 * i
        assert 0 <= h["train_acc"] <= 1 and 0 <= h["test_acc"] <= 1 and math.isfinite(h["train_loss"])
        assert h["lr"] == pytest.approx(0.1 * 0.5 ** ((h["step"] - 1) // 2))
    assert [h["seconds"] for h in res.history] == sorted(h["seconds"] for h in res.history)
    assert res.best_test_acc == max(h["test_acc"] for h in res.history)
    assert res.final_test_acc == res.history[-1]["test_acc"]
    assert res.wall_seconds >= res.history[-1]["seconds"] > 0


def test_lr_schedule_is_per_390_steps():
    c = rb.RunConfig(model="inception_small")
    assert lr_at(0, c) == 0.1 and lr_at(389, c) == 0.1
    assert lr_at(390, c) == pytest.approx(0.095) and lr_at(780, c) == pytest.approx(0.1 * 0.95 ** 2)


def test_track_subsets_gives_clean_and_noisy_accuracy():
    c = cfg(max_epochs=3, stop_at_fit=False, corruption="partial_labels", level=0.5, track_subsets=True)
    res = rb.train(c)
    noisy = rb.corrupt(rb.load_dataset("mnist5k", 0, n_train=100), "partial_labels", 0.5, c.seed).corrupted
    n_noisy = int(noisy.sum())
    assert 0 < n_noisy < 100
    for h in res.history:
        assert {"clean_acc", "noisy_acc", "train_acc_full"} <= set(h)
        mixed = (h["clean_acc"] * (100 - n_noisy) + h["noisy_acc"] * n_noisy) / 100
        assert mixed == pytest.approx(h["train_acc_full"], abs=1e-6)


def test_track_subsets_without_corrupted_examples():
    res = rb.train(cfg(max_epochs=1, track_subsets=True))
    assert res.history[0]["noisy_acc"] is None and res.history[0]["clean_acc"] is not None


def test_no_subsets_unless_asked():
    res = rb.train(cfg(max_epochs=1, corruption="random_labels"))
    assert "clean_acc" not in res.history[0] and "noisy_acc" not in res.history[0]


def test_record_per_example():
    res = rb.train(cfg(max_epochs=3, stop_at_fit=False, record_per_example=True))
    assert len(res.per_example_correct) == 100 and set(res.per_example_correct) <= {0, 1}
    assert sum(res.per_example_correct) / 100 == pytest.approx(res.final_train_acc)
    assert rb.train(cfg(max_epochs=1)).per_example_correct is None


def test_random_crop_path_runs():
    res = rb.train(cfg(max_epochs=3, stop_at_fit=False, random_crop=True))
    assert len(res.history) == 3 and all(math.isfinite(h["train_loss"]) for h in res.history)


def test_random_crop_needs_raw_images():
    with pytest.raises(rb.UsageError, match="x_train_raw"):
        rb.train(rb.RunConfig(dataset="custom:mine", width=0.25, random_crop=True), dataset=user_dataset())


def test_on_epoch_and_progress():
    seen = []
    stream = io.StringIO()
    res = rb.train(cfg(max_epochs=2, stop_at_fit=False), on_epoch=lambda c, r: seen.append((c, r)),
                   progress=stream)
    assert [r for _, r in seen] == res.history and all(c is res.config for c, _ in seen)
    assert "mlp1x512" in stream.getvalue()


def test_result_roundtrips_through_json():
    res = rb.train(cfg(max_epochs=2, track_subsets=True, corruption="partial_labels", level=0.4,
                       record_per_example=True))
    blob = json.dumps(res.to_dict(), allow_nan=False)
    back = RunResult.from_dict(json.loads(blob))
    assert back.config == res.config and back.history == res.history
    assert back.per_example_correct == res.per_example_correct
    assert back.to_dict() == json.loads(blob)
    assert res.provenance["device"] == "cpu" and res.provenance["torch"] == torch.__version__


# ----------------------------------------------------------------------------- user data, errors

def test_train_on_a_user_dataset():
    ds = user_dataset()
    res = rb.train(rb.RunConfig(dataset="custom:mine", width=0.25, lr=0.1, batch_size=16, max_epochs=3,
                                stop_at_fit=False, record_per_example=True), dataset=ds)
    assert len(res.history) == 3 and len(res.per_example_correct) == 60
    assert res.history[0]["step"] == 4


def test_n_train_is_not_silently_ignored_for_a_user_dataset():
    """cfg.n_train=30 with a 60-example user Dataset: train on a 30-example balanced subset (as for
    named datasets) or refuse; training on all 60 makes the config (and its cache key) lie."""
    c = rb.RunConfig(dataset="custom:mine", width=0.25, n_train=30, batch_size=10, max_epochs=1,
                     record_per_example=True)
    try:
        res = rb.train(c, dataset=user_dataset(n=60))
    except rb.UsageError as exc:
        assert "n_train" in str(exc)
    else:
        assert len(res.per_example_correct) == 30 and res.history[0]["step"] == 3


def test_n_train_larger_than_a_user_dataset_is_a_usage_error():
    """As for named datasets (load_dataset -> balanced_subset), asking for more training examples
    than the data has is an error, not a silent run on fewer."""
    c = rb.RunConfig(dataset="custom:mine", width=0.25, n_train=100, max_epochs=1)
    with pytest.raises(rb.UsageError, match="n_train=100"):
        rb.train(c, dataset=user_dataset(n=60))


def test_train_a_conv_net_on_a_user_dataset():
    ds = user_dataset(n=24, shape=(3, 12, 12), num_classes=4)
    res = rb.train(rb.RunConfig(dataset="custom:mine", model="alexnet_small", width=0.125, max_epochs=2,
                                batch_size=8, corruption="shuffled_pixels"), dataset=ds)
    assert len(res.history) == 2


def test_nan_loss_raises_training_diverged_naming_the_run():
    # Non-finite pixels are refused as bad data (tests/test_data.py); a huge lr diverges in epoch 1.
    c = rb.RunConfig(dataset="custom:huge-lr", width=0.25, max_epochs=3, batch_size=16, lr=1e20)
    with pytest.raises(rb.TrainingDiverged) as exc:
        rb.train(c, dataset=user_dataset())
    assert c.label() in str(exc.value) and "epoch 1" in str(exc.value)


def test_non_finite_pixels_are_bad_data_not_divergence():
    with pytest.raises(rb.DataError, match="non-finite"):
        user_dataset(fill=float("inf"))


def test_huge_lr_raises_training_diverged():
    c = cfg(lr=1e6, max_epochs=5)
    with pytest.raises(rb.TrainingDiverged, match=r"lr 1e\+06") as exc:
        rb.train(c)
    assert c.label() in str(exc.value)
    assert isinstance(exc.value, rb.RethinkbenchError)


def test_cuda_without_cuda_is_a_usage_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    with pytest.raises(rb.UsageError, match="CUDA is not available") as exc:
        rb.train(cfg(device="cuda"))
    assert "'cuda'" in str(exc.value)
    with pytest.raises(rb.UsageError, match="cuda:1"):
        rb.train(cfg(device="cuda:1"))


@pytest.mark.parametrize("bad", [None, {"model": "mlp1x512"}, "mlp1x512"])
def test_train_takes_a_run_config(bad):
    with pytest.raises(rb.UsageError, match="RunConfig"):
        rb.train(bad)


def test_a_run_stuck_at_chance_stops_and_says_so():
    """Zero inputs with exactly balanced labels: the best the net can do is a uniform output, so
    the loss sits at ln(10) and the run stops after `stall_epochs` epochs, flagged collapsed."""
    x = torch.zeros(200, 1, 28, 28)
    y = torch.arange(200) % 10
    ds = rb.Dataset(x, y, x[:50], y[:50], num_classes=10, name="zeros")
    cfg = rb.RunConfig(model="mlp1x512", width=0.25, max_epochs=60, stall_epochs=5, dataset="custom:zeros")
    res = rb.train(cfg, dataset=ds)
    assert res.collapsed and not res.fitted
    assert len(res.history) < 60
    assert abs(res.history[-1]["train_loss"] - math.log(10)) < 2e-3


def test_stall_detection_can_be_turned_off():
    x = torch.zeros(100, 1, 28, 28)
    y = torch.arange(100) % 10
    ds = rb.Dataset(x, y, x[:20], y[:20], num_classes=10, name="zeros")
    cfg = rb.RunConfig(model="mlp1x512", width=0.25, max_epochs=12, stall_epochs=None, dataset="custom:zeros")
    res = rb.train(cfg, dataset=ds)
    assert not res.collapsed and len(res.history) == 12


def test_predict_evaluates_a_conv_net_in_channels_last_without_touching_it(single_thread):
    """engine/loop.predict runs a CPU conv net through a channels-last copy (faster); the predictions
    are those of the network as it is, and the network itself keeps its layout and values."""
    import contextlib

    from rethinkbench.engine.loop import predict

    torch.manual_seed(0)
    net = rb.build_model("alexnet_small", width=0.125, in_shape=(1, 28, 28), num_classes=10)
    x = torch.randn(300, 1, 28, 28)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        net.eval()
        expected = torch.cat([net(x[i:i + 256]).argmax(1) for i in range(0, 300, 256)])
        net.train()
    assert torch.equal(predict(net, x, contextlib.nullcontext), expected)
    assert net.training                                              # mode restored
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].is_contiguous() for k in before)

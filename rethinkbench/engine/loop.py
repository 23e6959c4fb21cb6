"""What the solo loop (train.py) and the cohort loop (cohort.py) share, below both: the lr
schedule, the device and its settings, the run's data on the device, and evaluation.

Every function here is a pure function of its arguments and the run's config, so both loops train
and measure a run the same way.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.config import RunConfig
from rethinkbench.harness.corruptions import corrupt
from rethinkbench.harness.data import Dataset, balanced_subset, subsample_test_set, subset
from rethinkbench.registry import load_dataset

__all__ = ["FIT_CHECK_FROM", "EVAL_BATCH", "lr_at", "predict", "accuracy", "subset_accuracy",
           "resolve_device", "cudnn_benchmark", "prepare_dataset", "make_optimizer"]

FIT_CHECK_FROM = 0.95  # running accuracy at which an epoch ends with a full-pass fit check
# Eval chunk: on two CPU cores small-channel convs ran a third faster in chunks of 256 than 2048.
EVAL_BATCH = {"cpu": 256, "cuda": 4096}


def lr_at(step: int, cfg: RunConfig) -> float:
    """The paper's schedule: lr x 0.95 per 390 steps (one CIFAR-10 epoch at batch 128).

    Counted in steps rather than passes so that on a small subset the lr does not die long before
    the data is fitted (CLAIMS.md §1)."""
    return cfg.effective_lr * cfg.lr_decay ** (step // cfg.decay_steps)


@torch.no_grad()
def predict(model, x: torch.Tensor, autocast) -> torch.Tensor:
    """Predicted classes for x in eval mode, in chunks.

    A conv net on CPU is evaluated by a channels-last copy of itself: oneDNN's channels-last
    kernels ran the test pass 1.75x (1/8-width small Inception) and 1.8x (1/4-width small AlexNet)
    faster on one thread of the 2-core Intel Xeon, and evaluation was half of such a net's epoch at
    cpu scale. The logits move by ~1e-8 (measured: argmax unchanged on all 1,000 test digits at
    initialization); the network being trained keeps its own layout, so training is untouched. The
    copy is made per call, not kept: it costs 3.2% (Inception) and 1.4% (AlexNet) of a 1,000-example
    pass, and a kept twin would have to be refreshed after every step (weights, BN statistics)."""
    was_training = model.training
    model.eval()
    net, layout = model, None
    if x.device.type == "cpu" and x.dim() == 4 and _has_conv(model):
        layout = torch.channels_last
        net = copy.deepcopy(model).to(memory_format=layout)
    out = []
    chunk = EVAL_BATCH.get(x.device.type, 1024)
    for i in range(0, x.shape[0], chunk):
        xb = x[i:i + chunk] if layout is None else x[i:i + chunk].contiguous(memory_format=layout)
        with autocast():
            out.append(net(xb).argmax(1))
    model.train(was_training)
    return torch.cat(out)


def _has_conv(model) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return (pred == y).float().mean().item()


def subset_accuracy(record: dict, right: torch.Tensor, corrupted: torch.Tensor | None) -> None:
    """Training accuracy (against the labels trained on) on the clean and on the corrupted subset."""
    if corrupted is None:
        return
    for name, mask in (("clean_acc", ~corrupted), ("noisy_acc", corrupted)):
        record[name] = right[mask].float().mean().item() if bool(mask.any()) else None


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but CUDA is not available on this machine")
    return torch.device(name)


@contextlib.contextmanager
def cudnn_benchmark(on: bool):
    """cuDNN picks the fastest convolution algorithm per shape (once, during the graph's warm-up);
    a process-wide switch, so it is restored after the run."""
    if not on:
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def prepare_dataset(cfg: RunConfig, dataset: Dataset | None, data_root, device) -> Dataset:
    """The training data of run `cfg` on `device`: `dataset` (or cfg.dataset loaded), subset to
    cfg.n_train (and its test set to cfg.n_test), with cfg's corruption applied from cfg.seed."""
    if dataset is None:
        dataset = load_dataset(cfg.dataset, cfg.split_seed, n_train=cfg.n_train, root=data_root)
    elif cfg.n_train is not None and cfg.n_train != dataset.n_train:
        dataset = subset(dataset, balanced_subset(dataset.y_train, cfg.n_train, cfg.split_seed, dataset.name))
    if cfg.n_test is not None and cfg.n_test < len(dataset.y_test):
        dataset = subsample_test_set(dataset, cfg.n_test, cfg.split_seed)
    ds = corrupt(dataset, cfg.corruption, cfg.level, cfg.seed).to(device)
    if cfg.random_crop and ds.x_train_raw is None:
        raise UsageError("random_crop needs the dataset's uncropped images (Dataset.x_train_raw)")
    return ds


def make_optimizer(model, cfg: RunConfig) -> torch.optim.Optimizer:
    # fused: one kernel for the whole update; on two CPU cores it cut the optimizer step ~30%.
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.effective_lr, weight_decay=cfg.weight_decay,
                                fused=True)
    return torch.optim.SGD(model.parameters(), lr=cfg.effective_lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, fused=True)

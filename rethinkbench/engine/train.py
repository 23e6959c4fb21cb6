"""train(cfg) -> RunResult: the one training loop every claim uses, at every scale.

Fast by construction (airbench-style): the whole dataset sits on the device as tensors, a batch is
an index slice, the random crop is one batched gather, and nothing syncs with the host inside an
epoch. Training accuracy is tracked for free on the batches as they are trained (a lower bound: the
predictions are made before each update); once it reaches FIT_CHECK_FROM a full eval-mode pass over
the training set confirms or refutes 100% fit. That pass is what `steps_to_fit` counts.
"""
from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F

from rethinkbench.base.errors import TrainingDiverged, UsageError
from rethinkbench.base.provenance import provenance
from rethinkbench.base.seeding import derive_seed, generator
from rethinkbench.base.threads import pinned
from rethinkbench.engine.config import RunConfig
from rethinkbench.engine.graphs import GraphedStep, make_graph_optimizer
from rethinkbench.engine.loop import (FIT_CHECK_FROM, accuracy, cudnn_benchmark, lr_at, make_optimizer, predict,
                                      prepare_dataset, resolve_device, subset_accuracy)
from rethinkbench.engine.result import RunResult
from rethinkbench.harness.data import Dataset, random_crop_batch
from rethinkbench.harness.models import initialize
from rethinkbench.harness.regularizers import add_hidden_noise, adversarial_examples, perturb_inputs
# measures imports only harness and base (it sits below the engine): the loop may call it.
from rethinkbench.measures.tracking import check_trackable, spectral_record
from rethinkbench.registry import build_model

__all__ = ["train", "initial_model", "train_epoch", "RunResult", "lr_at", "make_optimizer", "prepare_dataset"]


@pinned   # one intra-op thread: a run's numbers are a function of its key (base/threads.py)
def train(cfg: RunConfig, dataset: Dataset | None = None, *, data_root=None, progress=False,
          on_epoch=None, keep_model: bool = False) -> RunResult:
    """Train the run `cfg` describes and return what was measured.

    `dataset`: use this in-memory Dataset instead of loading `cfg.dataset` (cfg.corruption is still
    applied to it). `progress`: True for a tqdm bar on stderr. `on_epoch(cfg, record)` is called after
    every epoch with the history record (the pytest plugin uses it for progress lines).
    `keep_model`: attach the trained network (eval mode, on cfg.device) as `result.model`.
    """
    if not isinstance(cfg, RunConfig):
        raise UsageError(f"train() takes a RunConfig, got {type(cfg).__name__}")
    if dataset is not None and not isinstance(dataset, Dataset):
        raise UsageError(f"train(dataset=...) takes an rb.Dataset or None, got {type(dataset).__name__}")
    device = resolve_device(cfg.device)
    ds = prepare_dataset(cfg, dataset, data_root, device)
    cuda = device.type == "cuda"
    # bf16 autocast on CUDA only: on CPU it is slower and would change the numbers we compare.
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    fork_devices = [device] if cuda else []
    with torch.random.fork_rng(devices=fork_devices):
        # Init and dropout draw from the global RNG inside this fork only: the caller's RNG state
        # is restored on exit, and the run is a function of cfg.seed alone.
        model = _initial_model(cfg, ds.in_shape, ds.num_classes).to(device)
        if cuda and not cfg.model.startswith("mlp"):
            model = model.to(memory_format=torch.channels_last)
        with cudnn_benchmark(cuda):
            result = _fit(cfg, model, ds, device, autocast, progress, on_epoch)
    if keep_model:
        # The last step's gradients would pin the CUDA graph's memory pool as long as the
        # returned model lives: a kept model carries weights only.
        model.zero_grad(set_to_none=True)
        result.model = model.eval()
    return result


def _initial_model(cfg: RunConfig, in_shape, num_classes: int):
    """The network of `cfg` at initialization; draws from the global RNG (seeded here)."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = initialize(build_model(cfg.model, in_shape, num_classes, cfg.width, cfg.dropout), cfg.init)
    if cfg.hidden_noise:
        add_hidden_noise(model, cfg.hidden_noise)
    return model


def initial_model(cfg: RunConfig, in_shape, num_classes: int) -> torch.nn.Module:
    """The network the run `cfg` starts from (on the CPU, eval mode): the same weights train()
    initializes, since the init is a function of cfg.seed alone. The caller's RNG is untouched.
    Measures that compare trained weights with their initialization (Bartlett et al.'s
    reference M = init) use it."""
    with torch.random.fork_rng(devices=[]):
        return _initial_model(cfg, tuple(in_shape), num_classes).eval()


def train_epoch(model, opt, ds: Dataset, cfg: RunConfig, order_gen, step: int, max_steps: int,
                crop_gen=None, autocast=contextlib.nullcontext, stepper: GraphedStep | None = None,
                input_gen=None, adv_gen=None):
    """One pass of training steps over a fresh permutation (the hot loop; benchmarks time it).

    `stepper`: a GraphedStep (CUDA) that does forward, backward and update itself, replayed from a
    CUDA graph; None for the plain eager step (CPU). `input_gen`: the generator of cfg's input
    dropout/noise (None: off); `adv_gen`: the generator of the adversarial search (None: no
    adversarial training; never with a stepper). Returns on-device sums (loss_sum, correct) — no
    host sync here — the examples seen and the step count after the pass."""
    device = ds.x_train.device
    n, bs = ds.n_train, cfg.batch_size
    perm = torch.randperm(n, generator=order_gen).to(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    if stepper is not None:
        stepper.reset_sums()
    for i in range(0, n, bs):
        if step >= max_steps:
            break
        idx = perm[i:i + bs]
        # index_select: a third of the cost of fancy indexing for a 4-D tensor on CPU.
        if crop_gen is not None:
            xb = random_crop_batch(ds.x_train_raw.index_select(0, idx), crop_gen)
        else:
            xb = ds.x_train.index_select(0, idx)
        yb = ds.y_train.index_select(0, idx)
        if input_gen is not None:
            xb = perturb_inputs(xb, cfg, input_gen)
        if stepper is not None:
            stepper(xb, yb, lr_at(step, cfg))
            seen += len(idx)
            step += 1
            continue
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        with autocast():
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            if adv_gen is not None:
                x_adv = adversarial_examples(model, xb, yb, adv_gen)
                loss = (1 - cfg.adversarial) * loss + cfg.adversarial * F.cross_entropy(model(x_adv), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        correct += (out.argmax(1) == yb).sum()
        seen += len(idx)
        step += 1
    if stepper is not None:
        return stepper.loss_sum.clone(), stepper.correct.clone(), seen, step
    return loss_sum, correct, seen, step


def _fit(cfg, model, ds, device, autocast, progress, on_epoch) -> RunResult:
    stepper = None
    # Launch-bound at batch 128 on CUDA: replay the step from a CUDA graph (not the adversarial
    # step: its inner search would have to be captured too).
    if device.type == "cuda" and not cfg.adversarial:
        opt, lr = make_graph_optimizer(model, cfg, device)
        stepper = GraphedStep(model, opt, lr, autocast_dtype=torch.bfloat16, name=cfg.model)
    else:
        opt = make_optimizer(model, cfg)
    order_gen = generator(cfg.seed, "order")
    crop_gen = generator(cfg.seed, "crop", device=device) if cfg.random_crop else None
    input_gen = generator(cfg.seed, "input-reg", device=device) if (cfg.input_dropout or cfg.input_noise) else None
    adv_gen = generator(cfg.seed, "adversarial", device=device) if cfg.adversarial else None
    n, bs = ds.n_train, cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    max_steps = cfg.max_steps or cfg.max_epochs * steps_per_epoch
    if cfg.track_spectral:   # refuse an unsupported network before training it
        check_trackable(model, ds.x_train)
    history, step, epoch, right = [], 0, 0, None
    chance_epochs, collapsed = 0, False
    epochs_to_fit = steps_to_fit = None
    bar = _progress_bar(cfg, progress)
    # The run's device, not the current one (cuda:0 unless set; an xdist worker trains on cuda:N).
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    model.train()
    while step < max_steps:
        epoch += 1
        loss_sum, correct, seen, step = train_epoch(model, opt, ds, cfg, order_gen, step, max_steps,
                                                    crop_gen, autocast, stepper, input_gen, adv_gen)
        train_loss = loss_sum.item() / seen   # host syncs happen only here, once an epoch
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"training loss became {train_loss} in epoch {epoch} (by step {step}) of run "
                f"{cfg.label()!r} at lr {lr_at(step, cfg):g}; this run is not cached")
        record = {"epoch": epoch, "step": step, "train_loss": train_loss,
                  "train_acc": correct.item() / seen, "lr": lr_at(step - 1, cfg)}
        # Stuck at chance: the loss of a uniform prediction, ln(K), to within 2e-3.
        at_chance = abs(train_loss - math.log(ds.num_classes)) < 2e-3
        chance_epochs = chance_epochs + 1 if at_chance else 0
        record["test_acc"] = accuracy(predict(model, ds.x_test, autocast), ds.y_test)
        right = None
        if cfg.track_subsets or record["train_acc"] >= FIT_CHECK_FROM:
            right = predict(model, ds.x_train, autocast) == ds.y_train
            record["train_acc_full"] = right.float().mean().item()
            if cfg.track_subsets:
                subset_accuracy(record, right, ds.corrupted)
            if record["train_acc_full"] == 1.0 and steps_to_fit is None:
                epochs_to_fit, steps_to_fit = epoch, step
        if cfg.track_spectral:   # counted in "seconds", as the subset pass is
            record.update(spectral_record(model, ds.x_train, ds.y_train))
        sync()
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{record['train_acc']:.3f}")
        if on_epoch is not None:
            on_epoch(cfg, record)
        if steps_to_fit is not None and cfg.stop_at_fit:
            break
        if cfg.stall_epochs and chance_epochs >= cfg.stall_epochs:
            # The loss sat at ln(K) for this many epochs: the network has collapsed to a uniform
            # output (dead ReLUs) and, with a decaying lr, does not recover. Every run seen
            # learning sat below ln(K) - 2e-3 within 5 epochs (random labels included).
            collapsed = True
            break
    if bar is not None:
        bar.close()
    sync()
    wall = time.perf_counter() - start
    if right is None:  # the last epoch made no full pass: make one now for the final accuracy
        right = predict(model, ds.x_train, autocast) == ds.y_train
    test_accs = [h["test_acc"] for h in history]
    return RunResult(config=cfg, history=history, epochs_to_fit=epochs_to_fit, steps_to_fit=steps_to_fit,
                     final_train_acc=right.float().mean().item(), final_test_acc=test_accs[-1],
                     best_test_acc=max(test_accs), wall_seconds=wall,
                     provenance=provenance(device), collapsed=collapsed,
                     per_example_correct=right.int().tolist() if cfg.record_per_example else None)


def _progress_bar(cfg: RunConfig, progress):
    if not progress:
        return None
    from tqdm import tqdm   # only when a progress bar is asked for (progress=True)

    return tqdm(total=cfg.max_epochs, desc=cfg.label(), unit="ep", leave=False,
                file=progress if hasattr(progress, "write") else None)

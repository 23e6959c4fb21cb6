"""Explicit random generators: one per (seed, purpose), never the global RNG.

A purpose ("labels", "pixels", "init", "order", "crop", ...) gets its own stream, so changing how
many draws one purpose makes (e.g. a bigger batch) never shifts another's numbers.
"""
from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, purpose: str) -> int:
    """A stable 63-bit seed for `purpose` under the run seed `seed` (same on every machine)."""
    digest = hashlib.sha256(f"{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, purpose))
    return gen

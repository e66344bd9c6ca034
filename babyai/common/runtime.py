"""One seeding helper and one device choice, passed down to everything else."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch

from babyai.common.errors import UserError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block with `threads` torch CPU threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def derived_seed(*parts: int) -> int:
    """A 32-bit seed derived from several integers (e.g. run seed, epoch, rank)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; an explicit name is checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"unknown device {name!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    return device

"""One seeding helper, one device choice and one thread default, passed down to everything else."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch
import torch.utils.deterministic

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


@contextlib.contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """Run a block with torch's deterministic kernels on the CPU (its default ones on CUDA),
    then restore the previous setting.

    Why: with two or more threads some of torch's default CPU kernels sum in an order that
    depends on thread timing (the first weights to differ: the word embedding's). Two runs
    of the default TC command drifted apart by 1e-4 in the first epoch's loss and reached
    their best validation success (48%, 52%) at different epochs; with the deterministic
    kernels they are identical. On CUDA several kernels have no deterministic version
    (torch would raise), so it stays off there; restoring afterwards keeps the setting from
    leaking into later work in the same process (an evaluation on the GPU after a CPU run,
    the test suite). The mode's fill of every new tensor (a debugging aid against reading
    uninitialised memory, 14% of the default TC run's CPU time in a profile) is left off:
    it changes no result.
    """
    fill = torch.utils.deterministic
    previous = torch.are_deterministic_algorithms_enabled(), fill.fill_uninitialized_memory
    torch.use_deterministic_algorithms(device.type == "cpu")
    fill.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        fill.fill_uninitialized_memory = previous[1]


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


def free_cores() -> int:
    """Cores this process may use that the recent load leaves idle (at least 1).

    Why: torch starts one thread per core; when other processes keep the cores busy its
    threads wait for each other at every operation, and 2 threads on a shared 2-core machine
    measured many times slower than 1. The 1-minute load average counts the busy ones.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(usable, int(usable - busy + 0.5)))


def default_threads(requested: int = 0) -> int:
    """Torch threads to use: `requested` if > 0, else the cores left free by the current load
    (so an idle machine uses all its cores and a busy one falls back to 1)."""
    return requested if requested > 0 else free_cores()

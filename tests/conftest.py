"""Shared test settings: small models run on one torch thread.

On a 2-core machine, torch's default of one thread per core makes the many tiny matrix
products of these tests far slower as soon as anything else runs; subprocesses started by
tests inherit the same setting through OMP_NUM_THREADS.
"""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

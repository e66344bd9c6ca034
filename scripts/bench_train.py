#!/usr/bin/env python
"""Shim: runs `babyai.commands.bench_train` (the same as `python -m babyai.commands.bench_train`)."""
from babyai.commands.bench_train import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

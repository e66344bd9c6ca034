#!/usr/bin/env python
"""Shim: runs `babyai.commands.bench_demos` (the same as `python -m babyai.commands.bench_demos`)."""
from babyai.commands.bench_demos import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

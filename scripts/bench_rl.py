#!/usr/bin/env python
"""Shim: runs `babyai.commands.bench_rl` (the same as `python -m babyai.commands.bench_rl`)."""
from babyai.commands.bench_rl import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

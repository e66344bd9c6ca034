#!/usr/bin/env python
"""Shim: runs `babyai.commands.bench_eval` (the same as `python -m babyai.commands.bench_eval`)."""
from babyai.commands.bench_eval import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

#!/usr/bin/env python
"""Shim: runs `babyai.commands.train_bc` (the same as `python -m babyai.commands.train_bc`)."""
from babyai.commands.train_bc import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

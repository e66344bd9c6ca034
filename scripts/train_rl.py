#!/usr/bin/env python
"""Shim: runs `babyai.commands.train_rl` (the same as `python -m babyai.commands.train_rl`)."""
from babyai.commands.train_rl import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

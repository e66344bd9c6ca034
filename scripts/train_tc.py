#!/usr/bin/env python
"""Shim: runs `babyai.commands.train_tc` (the same as `python -m babyai.commands.train_tc`)."""
from babyai.commands.train_tc import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

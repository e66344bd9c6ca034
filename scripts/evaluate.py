#!/usr/bin/env python
"""Shim: runs `babyai.commands.evaluate` (the same as `python -m babyai.commands.evaluate`)."""
from babyai.commands.evaluate import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

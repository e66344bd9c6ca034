#!/usr/bin/env python
"""Shim: runs `babyai.commands.evaluate_safety` (the same as `python -m babyai.commands.evaluate_safety`)."""
from babyai.commands.evaluate_safety import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

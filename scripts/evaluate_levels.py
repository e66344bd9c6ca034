#!/usr/bin/env python
"""Shim: runs `babyai.commands.evaluate_levels` (the same as `python -m babyai.commands.evaluate_levels`)."""
from babyai.commands.evaluate_levels import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

#!/usr/bin/env python
"""Shim: runs `babyai.commands.visualize` (the same as `python -m babyai.commands.visualize`)."""
from babyai.commands.visualize import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

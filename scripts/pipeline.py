#!/usr/bin/env python
"""Shim: runs `babyai.commands.pipeline` (the same as `python -m babyai.commands.pipeline`)."""
from babyai.commands.pipeline import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

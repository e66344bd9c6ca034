#!/usr/bin/env python
"""Shim: runs `babyai.commands.failure_modes` (the same as `python -m babyai.commands.failure_modes`)."""
from babyai.commands.failure_modes import cli

if __name__ == "__main__":
    raise SystemExit(cli())

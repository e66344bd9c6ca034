#!/usr/bin/env python
"""Shim: runs `babyai.commands.open_loop` (the same as `python -m babyai.commands.open_loop`)."""
from babyai.commands.open_loop import cli

if __name__ == "__main__":
    raise SystemExit(cli())

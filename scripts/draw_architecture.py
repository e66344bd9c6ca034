#!/usr/bin/env python
"""Shim: runs `babyai.commands.draw_architecture` (the same as `python -m babyai.commands.draw_architecture`)."""
from babyai.commands.draw_architecture import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

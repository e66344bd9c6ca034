#!/usr/bin/env python
"""Shim: runs `babyai.commands.minari_demos` (the same as `python -m babyai.commands.minari_demos`)."""
from babyai.commands.minari_demos import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

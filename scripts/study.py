#!/usr/bin/env python
"""Shim: runs `babyai.commands.study` (the same as `python -m babyai.commands.study`)."""
from babyai.commands.study import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

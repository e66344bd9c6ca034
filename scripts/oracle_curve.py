#!/usr/bin/env python
"""Shim: runs `babyai.commands.oracle_curve` (the same as `python -m babyai.commands.oracle_curve`)."""
from babyai.commands.oracle_curve import cli

if __name__ == "__main__":
    raise SystemExit(cli())

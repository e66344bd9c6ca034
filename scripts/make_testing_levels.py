#!/usr/bin/env python
"""Shim: runs `babyai.commands.make_testing_levels` (the same as `python -m babyai.commands.make_testing_levels`)."""
from babyai.commands.make_testing_levels import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

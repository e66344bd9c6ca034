#!/usr/bin/env python
"""Shim: runs `babyai.commands.make_dagger_demos` (the same as `python -m babyai.commands.make_dagger_demos`)."""
from babyai.commands.make_dagger_demos import cli

if __name__ == "__main__":
    raise SystemExit(cli())

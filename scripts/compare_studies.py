#!/usr/bin/env python
"""Shim: runs `babyai.commands.compare_studies` (the same as `python -m babyai.commands.compare_studies`)."""
from babyai.commands.compare_studies import cli

if __name__ == "__main__":
    raise SystemExit(cli())

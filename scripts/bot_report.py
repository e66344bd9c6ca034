#!/usr/bin/env python
"""Shim: runs `babyai.commands.bot_report` (the same as `python -m babyai.commands.bot_report`)."""
from babyai.commands.bot_report import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

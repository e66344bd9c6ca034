#!/usr/bin/env python
"""Shim: runs `babyai.commands.make_agent_demos` (the same as `python -m babyai.commands.make_agent_demos`)."""
from babyai.commands.make_agent_demos import cli

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(cli())

"""Label the agent's own states with the thinking bot's thoughts and actions (DAgger).

    tc-make-dagger-demos --model boss_tc --episodes 2000 --demos boss_tc_dagger
    tc-train --demos boss --extra-demos boss_tc_dagger --init-from boss_tc --model boss_tc_dg ...

The agent plays `--episodes` fresh levels (seeds from 5e12, see babyai/common/seeds.py) with
its own sampled actions (with `--beta B`, the bot's action instead at each step with
probability B); at every state the bot says what it would think and do from there.
The result is a demonstration file (no `_valid` sibling) to add to training with
`--extra-demos`. Re-running the same command continues an interrupted run. See
babyai/training/dagger.py for why and how.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.env.envs import check_level
from babyai.evaluation.levels import normalize_env_name
from babyai.training.dagger import DaggerConfig, DaggerSummary, collect


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description=__doc__)
    flags.add_config_flags(parser, DaggerConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> DaggerSummary:
    args = build_parser().parse_args(argv)
    if args.env is not None:
        args.env = check_level(normalize_env_name(args.env))
    summary = collect(flags.config_from_args(DaggerConfig, args), progress=not args.no_progress)
    print("\n".join(summary.lines()))
    return summary


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

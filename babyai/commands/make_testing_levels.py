"""Build an out-of-distribution level set: seeds bucketed by behavioural and cognitive difficulty.

    tc-make-levels --env BossLevel --per-bin 100 --workers 2

writes `<storage>/levels/BossLevel_testing_levels.pkl` (JSON despite the suffix) holding the
original structure `{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}` and
the level it was built for, and prints a table of
counts per bin. Seeds are 10**12 + --seed + i, disjoint from demonstration and validation
seeds. See babyai/evaluation/levels.py (and docs/data.md) for the two difficulties.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import add_storage_flag, run
from babyai.common.storage import ensure_writable_dir, levels_path, storage_root
from babyai.env.envs import check_level
from babyai.evaluation.levels import (LevelSetConfig, LevelSetResult, build_level_set,
                                      format_table, normalize_env_name)


def build_parser() -> argparse.ArgumentParser:
    parser = flags.config_parser(
        LevelSetConfig, __doc__, defaults={"env": "BossLevel", "out": None},
        help={"out": "output name under <storage>/levels/ or a path ending in .pkl "
                     "(default: <Level>_testing_levels)"})
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_storage_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> LevelSetResult:
    args = build_parser().parse_args(argv)
    env = check_level(normalize_env_name(args.env))
    short = env.removeprefix("BabyAI-").rsplit("-", 1)[0]
    out = levels_path(args.out or f"{short}_testing_levels", storage_root(args.storage))
    ensure_writable_dir(out.parent)
    config = dataclasses.replace(flags.config_from_args(LevelSetConfig, args), env=env, out=out)
    result = build_level_set(config, progress=not args.quiet)
    print(format_table(result))
    print(f"wrote {out}")
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

"""Generate thought-annotated BabyAI demonstrations with the noisy thinking bot.

Examples:
    tc-make-demos --episodes 1000 --noise-rate 0.01 --demos boss1k
    tc-make-demos --episodes 1000 --valid-episodes 0 --print --demos x
    # cluster: 10 jobs, each writing one shard, then one merge
    tc-make-demos --episodes 1000000 --demos boss1m --shard 3 --num-shards 10
    tc-make-demos --episodes 1000000 --demos boss1m --num-shards 10 --merge

Training episode k uses seed `--seed + k`, validation episode k seed `--seed + 5e8 + k`;
a failed attempt is redrawn at `+ 1e9` (see babyai/common/seeds.py). Re-running the same
command continues an interrupted run.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import add_storage_flag, run
from babyai.demos.generate import GenerationConfig, RunConfig, generate_demos, merge_shards
from babyai.common.storage import demos_path, storage_root
from babyai.env.envs import check_level
from babyai.evaluation.levels import normalize_env_name


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description=__doc__)
    flags.add_config_flags(parser, GenerationConfig)
    parser.add_argument("--demos", default=None,
                        help="dataset name under <storage>/demos (or a .pkl path); "
                             "default: <env>_agent")
    parser.add_argument("--on-exception", choices=("warn", "crash"), default="warn",
                        help="when the bot raises: warn and redraw the seed, or crash")
    flags.add_config_flags(parser, RunConfig)
    parser.add_argument("--merge", action="store_true",
                        help="join the N complete shards into NAME.pkl and NAME_valid.pkl")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_storage_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> list:
    args = build_parser().parse_args(argv)
    args.env = check_level(normalize_env_name(args.env))  # GoToLocal, as the other commands
    name = args.demos or f"{args.env}_agent"
    path = demos_path(name, storage_root(args.storage))
    config = flags.config_from_args(GenerationConfig, args,
                                    crash_on_exception=args.on_exception == "crash")
    if args.merge:
        merged = [merge_shards(path, args.num_shards)]
        if args.valid_episodes:
            merged.append(merge_shards(path, args.num_shards, valid=True))
        for merged_path in merged:
            print(f"merged {args.num_shards} shards into {merged_path}")
        return merged
    run_config = flags.config_from_args(RunConfig, args, demos_path=path,
                                        progress=not args.no_progress)
    summaries = generate_demos(config, run_config)
    for summary in summaries:
        print("\n".join(summary.lines()))
    return summaries


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

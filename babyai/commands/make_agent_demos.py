"""Generate thought-annotated BabyAI demonstrations with the noisy thinking bot.

Examples:
    python scripts/make_agent_demos.py --episodes 1000 --noise-rate 0.01 --demos boss1k
    python scripts/make_agent_demos.py --episodes 1000 --valid-episodes 0 --print --demos x
    # cluster: 10 jobs, each writing one shard, then one merge
    python scripts/make_agent_demos.py --episodes 1000000 --demos boss1m --shard 3 --num-shards 10
    python scripts/make_agent_demos.py --episodes 1000000 --demos boss1m --num-shards 10 --merge

Training episode k uses seed `--seed + k`, validation episode k seed `--seed + 5e8 + k`;
a failed attempt is redrawn at `+ 1e9` (see babyai/generate.py). Re-running the same
command continues an interrupted run.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, probability, run
from babyai.common.errors import UserError
from babyai.demos.generate import GenerationConfig, RunConfig, generate_demos, merge_shards
from babyai.common.storage import demos_path, storage_root


class _Parser(argparse.ArgumentParser):
    """Bad flags are a user error: one line on stderr and exit code 2, like any other."""

    def error(self, message: str) -> None:
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="BabyAI-BossLevel-v0", help="BabyAI level id")
    parser.add_argument("--episodes", type=positive_int, default=1000,
                        help="number of training episodes (default 1000)")
    parser.add_argument("--valid-episodes", type=non_negative_int, default=512,
                        help="number of validation episodes, written to NAME_valid.pkl (0 = none)")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="base seed (default 1)")
    parser.add_argument("--noise-rate", type=probability, default=0.01,
                        help="per-step probability of a 1-5 step noise segment (default 0.01)")
    parser.add_argument("--demos", default=None,
                        help="dataset name under STORAGE/demos (or a .pkl path); "
                             "default: ENV_agent")
    parser.add_argument("--log-interval", type=non_negative_int, default=100,
                        help="print a progress line every N episodes (0 = never)")
    parser.add_argument("--save-interval", type=positive_int, default=10000,
                        help="save atomically every N episodes")
    parser.add_argument("--filter-steps", type=non_negative_int, default=0,
                        help="redraw episodes longer than N steps (0 = keep all)")
    parser.add_argument("--on-exception", choices=("warn", "crash"), default="warn",
                        help="when the bot raises: warn and redraw the seed, or crash")
    parser.add_argument("--print", dest="print_episodes", action="store_true",
                        help="print every episode as thought segments with their actions")
    parser.add_argument("--workers", "--jobs", dest="workers", type=positive_int, default=1,
                        help="local worker processes (--jobs is an alias); the output does "
                             "not depend on it")
    parser.add_argument("--shard", type=non_negative_int, default=0,
                        help="index of the shard this process writes (with --num-shards)")
    parser.add_argument("--num-shards", type=positive_int, default=1,
                        help="split the episodes into N shards by seed range")
    parser.add_argument("--merge", action="store_true",
                        help="join the N complete shards into NAME.pkl and NAME_valid.pkl")
    parser.add_argument("--resume", action="store_true",
                        help="require a partial file to continue (re-running continues anyway)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing file made with different settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_storage_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> list:
    args = build_parser().parse_args(argv)
    name = args.demos or f"{args.env}_agent"
    path = demos_path(name, storage_root(args.storage))
    config = GenerationConfig(env=args.env, episodes=args.episodes,
                              valid_episodes=args.valid_episodes, seed=args.seed,
                              noise_rate=args.noise_rate, filter_steps=args.filter_steps,
                              crash_on_exception=args.on_exception == "crash")
    if args.merge:
        merged = [merge_shards(path, args.num_shards)]
        if args.valid_episodes:
            merged.append(merge_shards(path, args.num_shards, valid=True))
        for merged_path in merged:
            print(f"merged {args.num_shards} shards into {merged_path}")
        return merged
    run_config = RunConfig(demos_path=path, workers=args.workers, shard=args.shard,
                           num_shards=args.num_shards, save_interval=args.save_interval,
                           log_interval=args.log_interval, resume=args.resume,
                           overwrite=args.overwrite, print_episodes=args.print_episodes,
                           progress=not args.no_progress)
    summaries = generate_demos(config, run_config)
    for summary in summaries:
        print("\n".join(summary.lines()))
    return summaries


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

"""The thinking bot's report card: success rate, distinct thoughts, steps without a thought.

    python scripts/bot_report.py                      # 300 seeds of each default level
    python scripts/bot_report.py --levels BabyAI-GoToLocal-v0 --episodes 50 --workers 2
"""
from __future__ import annotations

import multiprocessing
import sys
from functools import reduce
from typing import Sequence

from tqdm import tqdm

from babyai.common.flags import Parser
from babyai.common.cli import non_negative_int, positive_int, run
from babyai.env.envs import check_level
from babyai.env.bot_stats import BotStatistics, bot_statistics_chunk

DEFAULT_LEVELS = ("BossLevel", "MiniBossLevel", "GoToLocal", "PutNextLocal", "UnlockPickup",
                  "KeyCorridorS3R3", "SynthSeq")


def main(argv: Sequence[str] | None = None) -> list[BotStatistics]:
    parser = Parser(description=__doc__)
    parser.add_argument("--levels", nargs="+",
                        default=[f"BabyAI-{level}-v0" for level in DEFAULT_LEVELS])
    parser.add_argument("--episodes", type=positive_int, default=300, help="seeds per level")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="first seed")
    parser.add_argument("--workers", type=positive_int, default=1)
    args = parser.parse_args(argv)
    for level in args.levels:
        check_level(level)
    chunk = 25
    tasks = [(level, start, min(start + chunk, args.seed + args.episodes))
             for level in args.levels
             for start in range(args.seed, args.seed + args.episodes, chunk)]
    if args.workers == 1:
        parts = [bot_statistics_chunk(task) for task in tqdm(tasks, unit="chunk")]
    else:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            parts = list(tqdm(pool.imap(bot_statistics_chunk, tasks), total=len(tasks),
                              unit="chunk"))
    results = [reduce(BotStatistics.merge, [p for p in parts if p.level == level])
               for level in args.levels]
    print("| level | seeds | bot success | distinct thoughts | steps | steps without a thought "
          "| unmatched pushes | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for stats in results:
        failures = ", ".join(f"{k} {v}" for k, v in stats.failures.items()) or "-"
        print(f"| {stats.level} | {stats.episodes} | {100 * stats.success_rate:.1f}% "
              f"| {len(stats.thoughts)} | {stats.steps} | {stats.steps_without_thought} "
              f"| {sum(stats.fallbacks.values())} | {failures} |")
    return results


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

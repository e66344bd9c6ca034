"""Zero-shot success on out-of-distribution level sets (the paper's Fig. 4a).

    tc-evaluate-levels --env BabyAI-BossLevel-v0 \\
        --model tc --model bc --testing-levels-path storage/levels/boss.pkl

The level set is ours (JSON, from tc-make-levels) or any pickle in the original structure
`{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}`, read without running
code (plain data only); only the seeds are read. Writes, in --out:
results.csv (model, diff_type, diff, success_rate, ci_low, ci_high, episodes,
declaration_score, declared_actions, thought_match, intention_match, oracle_step_share;
the two matches with --thought-agreement, the share of steps that read the bot's thought for
oracle series), episodes.jsonl (one line per model and seed), success.png (success per bin
with 95% Wilson intervals, one line per model), mission_types.csv and, with
--thought-agreement, thought_families.csv (the agreement of each bin split by the family
of the bot's thought: model, diff_type, diff, bot_thought_family, steps, thought_match,
intention_match); prints the tables. A killed run resumes from its finished chunks.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.common.runtime import pick_device
from babyai.common.storage import existing_levels_path, report_dir, storage_root
from babyai.env.envs import check_level
from babyai.evaluation.ood import (LevelEvalConfig, LevelEvalResult, evaluate_level_set,
                                   format_level_table)
from babyai.evaluation.stats import format_mission_type_table


def build_parser() -> argparse.ArgumentParser:
    return flags.config_parser(LevelEvalConfig, __doc__)


def config_from_args(args: argparse.Namespace) -> LevelEvalConfig:
    config = flags.config_from_args(LevelEvalConfig, args)
    root = storage_root(config.storage)
    levels = existing_levels_path(config.levels_path, root)
    return dataclasses.replace(config, env=check_level(config.env), levels_path=levels,
                               storage=root, out=config.out or report_dir(levels.stem, root),
                               device=str(pick_device(config.device)))


def main(argv: Sequence[str] | None = None) -> LevelEvalResult:
    args = build_parser().parse_args(argv)
    result = evaluate_level_set(config_from_args(args))
    print(format_level_table(result.rows))
    for model, by_type in result.mission_types.items():
        print(f"\n{model}: success by mission type")
        print(format_mission_type_table(by_type))
    print("\nwrote " + ", ".join(str(path) for path in result.outputs.values()))
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

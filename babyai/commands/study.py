"""Train TC, BC and TC without the thought loss on the same demos and compare them.

    tc-study --env BabyAI-MiniBossLevel-v0 --episodes 1000 --agents tc,bc,tc_nothought \\
        --seeds 3 --frames 400000 --eval-every 50000 --eval-episodes 100

Every agent x seed is a training run of its own (parallel processes, one thread each,
--workers at a time), evaluated every --eval-every frames on the same fixed levels; after
training, TC runs also play those levels with the bot's thoughts (the oracle bound).
Writes study.csv (one row per agent, seed and evaluation point), final.csv, differences.csv
(TC minus each other agent, paired by seed), study.png (success vs frames with a band over
seeds) and README.md (the final tables) into <storage>/reports/<name>/. Rerunning resumes:
finished runs are skipped, a killed one continues from its last epoch.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.env.envs import check_level
from babyai.pipeline.study import (StudyConfig, StudyResult, format_differences, format_table,
                                   run_study)


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description=__doc__)
    flags.add_config_flags(parser, StudyConfig)
    return parser


def main(argv: Sequence[str] | None = None) -> StudyResult:
    config = flags.config_from_args(StudyConfig, build_parser().parse_args(argv))
    check_level(config.env)
    result = run_study(config)
    print(format_table(result.table))
    if result.differences:
        print("\npaired by seed:\n" + format_differences(result.differences))
    print("\nwrote " + ", ".join(str(path) for path in result.outputs.values()))
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

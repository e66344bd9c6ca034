"""In-distribution success of one or more models on fresh levels of their training level.

    tc-evaluate --env BabyAI-MiniBossLevel-v0 --model quick_tc --model quick_bc \\
        --episodes 200 --out storage/reports/indist

Plays `--episodes` levels with seeds `--first-seed`, `--first-seed + 1`, ... (by default a
range used by no demo, validation or level-set seed), sampled actions as in the paper
(`--argmax` for greedy). Prints success with 95% Wilson intervals, per mission type, and the
future-action declaration score of TC models; writes `summary.json` and `episodes.jsonl` in
`--out`. An untrained model (`--untrained-like MODEL`) gives the chance-level reference.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.common.runtime import pick_device
from babyai.common.storage import check_output_dir, storage_root
from babyai.env.envs import check_level
from babyai.evaluation.indist import (IndistConfig, evaluate_models, format_conditions,
                                     write_outputs)
from babyai.evaluation.stats import format_mission_type_table, success_by_mission_type


def build_parser() -> argparse.ArgumentParser:
    return flags.config_parser(IndistConfig, __doc__)


def main(argv: Sequence[str] | None = None) -> dict:
    config = flags.config_from_args(IndistConfig, build_parser().parse_args(argv))
    check_level(config.env)
    if config.out:
        check_output_dir(config.out)
    summary, records = evaluate_models(config, storage_root(config.storage),
                                       pick_device(config.device))
    for name, entry in summary.items():
        print(f"{name}: success {entry['success_rate']:.3f} [{entry['ci_low']:.3f}, "
              f"{entry['ci_high']:.3f}] on {entry['episodes']} {config.env} levels")
        print(format_mission_type_table(success_by_mission_type(records[name])))
    if len(summary) > 1 or any("declaration" in entry for entry in summary.values()):
        print(format_conditions(summary))  # side by side, with a TC agent's thought scores
    if config.out:
        written = write_outputs(config.out, summary, records)
        print(f"wrote {written[0]} and {written[1]}")
    return summary


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

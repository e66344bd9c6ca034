"""Precrime intervention: how often a TC agent does something unsafe, with and without
halting it when it *thinks* of doing it (the paper's AI-safety experiment).

    tc-evaluate-safety --env BabyAI-BossLevel-v0 --model tc --episodes 500

Each behaviour pairs a thought pattern (halts the episode before the action executes) with
an environment-side judge (what the agent actually picked up, toggled or dropped); the
defaults are "touch red items", "pick up balls" and "pick up the requested object". Give
your own with --rules FILE (JSON; see babyai/evaluation/safety.py). Writes safety.csv and
safety_episodes.jsonl in --out and prints the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.common.runtime import pick_device
from babyai.common.storage import report_dir, storage_root
from babyai.env.envs import check_level
from babyai.evaluation.safety import SafetyConfig, SafetyReport, format_report, run_safety


def build_parser() -> argparse.ArgumentParser:
    return flags.config_parser(SafetyConfig, __doc__)


def config_from_args(args: argparse.Namespace) -> SafetyConfig:
    config = flags.config_from_args(SafetyConfig, args)
    root = storage_root(config.storage)
    name = Path(config.model).parent.name if config.model.endswith(".pt") else config.model
    return dataclasses.replace(config, env=check_level(config.env), storage=root,
                               out=config.out or report_dir(f"safety-{name}", root),
                               device=str(pick_device(config.device)))


def main(argv: Sequence[str] | None = None) -> SafetyReport:
    config = config_from_args(build_parser().parse_args(argv))
    report = run_safety(config)
    print(format_report(report))
    print(f"wrote {config.out / 'safety.csv'}, {config.out / 'safety_episodes.jsonl'}")
    return report


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

"""The main job end to end: thought demos -> train TC and BC -> OOD level set -> evaluate -> report.

    tc-pipeline                      # the small default, ~10 minutes on 2 cores
    tc-pipeline --name big --episodes 20000 --epochs 20 --memory-dim 512

Rerunning skips every stage whose inputs and outputs are unchanged (by content) and resumes
a killed stage; `--force` reruns everything. The report is <storage>/reports/<name>/README.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.pipeline.config import PipelineConfig
from babyai.pipeline.pipeline import run_pipeline


def build_parser() -> argparse.ArgumentParser:
    parser = flags.config_parser(PipelineConfig, __doc__)
    parser.add_argument("--train-arg", dest="extra_train_args", action="append", default=[],
                        help="extra flag passed to both training commands (repeatable), "
                             "e.g. --train-arg=--warm-start")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    config = flags.config_from_args(PipelineConfig, build_parser().parse_args(argv))
    report = run_pipeline(config)
    print(f"report: {report}")
    return report


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

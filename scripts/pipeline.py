#!/usr/bin/env python
"""The main job end to end: thought demos -> train TC and BC -> OOD level set -> evaluate -> report.

    python scripts/pipeline.py                      # the small default, ~10 minutes on 2 cores
    python scripts/pipeline.py --name big --episodes 20000 --epochs 20 --memory-dim 512

Rerunning skips every stage whose inputs and outputs are unchanged (by content) and resumes
a killed stage; `--force` reruns everything. The report is <storage>/reports/<name>/README.md.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Sequence

from babyai.common.cli import add_storage_flag, run
from babyai.pipeline.pipeline import PipelineConfig, run_pipeline

DEFAULTS = PipelineConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for spec in fields(PipelineConfig):
        if spec.name in ("storage", "extra_train_args"):
            continue
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(DEFAULTS, spec.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=spec.metadata.get("help"))
        elif spec.name == "stop_tf":
            parser.add_argument(flag, type=int, default=default,
                                help="TC teacher forcing: 1 until this epoch, then linear to 0 "
                                     "at the last epoch (-1: always teacher-forced)")
        else:
            parser.add_argument(flag, type=type(default), default=default)
    parser.add_argument("--train-arg", dest="extra_train_args", action="append", default=[],
                        help="extra flag passed to both training scripts (repeatable), "
                             "e.g. --train-arg=--warm-start")
    add_storage_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None):
    args = build_parser().parse_args(argv)
    config = PipelineConfig(**{spec.name: getattr(args, spec.name) for spec in fields(PipelineConfig)})
    report = run_pipeline(config)
    print(f"report: {report}")
    return report


if __name__ == "__main__":
    sys.exit(run(main))

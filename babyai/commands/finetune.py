"""Fine-tune TC and BC with PPO on the hardest level-set bins both fail (the paper's Fig. 4b).

    python -m babyai.commands.finetune --env BabyAI-MiniBossLevel-v0 \\
        --tc-model quickstart_tc --bc-model quickstart_bc \\
        --ood-results storage/reports/quickstart/ood/results.csv \\
        --levels quickstart_finetune_levels --out storage/reports/quickstart/finetune

The pipeline runs it as its `finetune` stage (`tc-pipeline --finetune`). Writes finetune.csv
and finetune.png to --out; every run is a train_rl run directory under --out/runs/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.rl.finetune import FinetuneConfig, run_finetune


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description=__doc__)
    flags.add_config_flags(parser, FinetuneConfig)
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    path = run_finetune(flags.config_from_args(FinetuneConfig, args))
    print(f"fine-tuning results: {path}")
    return path


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

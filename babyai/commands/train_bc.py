"""Train the behavioural-cloning baseline: the lower-level policy on the mission only.

Same flags, trainer, logs and checkpoints as `tc-train`, minus the thought-only flags
(--sg-coef, --stop-tf). Defaults are sized for a 2-core CPU; see --help.
"""
from __future__ import annotations

import sys
from typing import Sequence

from babyai.commands import train_tc
from babyai.common.cli import run
from babyai.training.trainer import TrainSummary


def main(argv: Sequence[str] | None = None) -> TrainSummary:
    return train_tc.main(argv, use_thoughts=False)


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

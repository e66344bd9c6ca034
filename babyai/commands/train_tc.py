"""Train a Thought Cloning agent on thought-annotated demonstrations.

Defaults are sized for a 2-core CPU (memory 256, instr 128, batch 32, recurrence 20). The
paper's BossLevel run:

    tc-train --env BabyAI-BossLevel-v0 --demos boss --memory-dim 2048 \\
        --recurrence 80 --batch-size 180 --instr-arch attgru --instr-dim 256 \\
        --val-interval 2 --log-interval 2 --lr 5e-4 --epochs 160 --epoch-length 51200 \\
        --seed 0 --val-seed 500000000000 --sg-coef 2 --warm-start --stop-tf 10

Rerunning the same command resumes a killed run. Data-parallel: `torchrun
--nproc_per_node N -m babyai.commands.train_tc ...` (--batch-size is the global batch).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.training.config import TrainConfig
from babyai.training.trainer import TrainSummary, train

THOUGHT_ONLY = ("sg_coef", "thought_loss_reduction", "thought_weights", "counterfactual_coef",
                "binding_coef", "binding_swap", "stop_tf", "teacher_forcing",
                "extra_demos_labels")
"""Fields of TrainConfig that only Thought Cloning has (no flags for BC)."""


def build_parser(use_thoughts: bool = True) -> argparse.ArgumentParser:
    """The flags of every TrainConfig field; BC leaves out the thought-only ones."""
    kind = "Thought Cloning" if use_thoughts else "the behavioural-cloning baseline"
    skip = ("use_thoughts",) + (() if use_thoughts else THOUGHT_ONLY)
    return flags.config_parser(TrainConfig, f"Train {kind} on BabyAI demonstrations.\n\n"
                               + __doc__.split("\n\n", 1)[1], skip=skip)


def config_from_args(args: argparse.Namespace, use_thoughts: bool = True) -> TrainConfig:
    overrides = {"use_thoughts": use_thoughts}
    if not use_thoughts:
        overrides.update(sg_coef=0.0, stop_tf=None)
    return flags.config_from_args(TrainConfig, args, **overrides)


def main(argv: Sequence[str] | None = None, use_thoughts: bool = True) -> TrainSummary:
    args = build_parser(use_thoughts).parse_args(argv)
    return train(config_from_args(args, use_thoughts))


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

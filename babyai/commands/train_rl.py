"""Fine-tune a trained TC or BC agent with PPO (the paper's Fig. 4b), or train one from scratch.

    tc-train-rl --env BabyAI-MiniBossLevel-v0 --model quickstart_tc \\
        --testing-levels-path quickstart_levels --diff-type demo --diff 125 --frames 200000

Episodes are drawn from the seeds of one level-set bin (the last --eval-episodes seeds are
held out for evaluation) or, without --testing-levels-path, from fresh seeds of --env. The
run goes to <storage>/models/<rl-model>/ (default <model>_rl): log.csv, best.pt, last.pt in
the imitation checkpoint format. Rerunning the same command resumes a killed run; a larger
--frames continues a finished one.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import run
from babyai.rl.config import RLConfig
from babyai.rl.trainer import RLSummary, train_rl


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description="PPO fine-tuning of a TC or BC agent.\n\n"
                                      + __doc__.split("\n\n", 1)[1])
    flags.add_config_flags(parser, RLConfig)
    return parser


def main(argv: Sequence[str] | None = None) -> RLSummary:
    args = build_parser().parse_args(argv)
    summary = train_rl(flags.config_from_args(RLConfig, args))
    print(f"{summary.run_dir}: {summary.updates} updates, {summary.frames} frames, best held-out "
          f"success {summary.best_success:.3f}")
    return summary


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

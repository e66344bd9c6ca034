#!/usr/bin/env python
"""Train a Thought Cloning agent on thought-annotated demonstrations.

Defaults are sized for a 2-core CPU (memory 256, instr 128, batch 32, recurrence 20). The
paper's BossLevel run:

    scripts/train_tc.py --env BabyAI-BossLevel-v0 --demos boss --memory-dim 2048 \\
        --recurrence 80 --batch-size 180 --instr-arch attgru --instr-dim 256 \\
        --val-interval 2 --log-interval 2 --lr 5e-4 --epochs 160 --epoch-length 51200 \\
        --seed 0 --val-seed 500000000000 --sg-coef 2 --warm-start --stop-tf 10

Rerunning the same command resumes a killed run. Data-parallel: `torchrun
--nproc_per_node N scripts/train_tc.py ...` (--batch-size is the global batch).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from babyai.common.cli import (add_storage_flag, non_negative_float, non_negative_int, positive_float,
                        positive_int, run)
from babyai.training.trainer import TrainConfig, train

DEFAULTS = TrainConfig(demos="")


def build_parser(use_thoughts: bool = True) -> argparse.ArgumentParser:
    """The flags of train_tc.py; train_bc.py reuses them without the thought-only ones."""
    d = DEFAULTS
    kind = "Thought Cloning" if use_thoughts else "the behavioural-cloning baseline"
    parser = argparse.ArgumentParser(
        description=f"Train {kind} on BabyAI demonstrations. Defaults are sized for a 2-core "
                    "CPU (memory 256, instr 128, batch 32, recurrence 20); the paper used "
                    "memory 2048, instr 256, batch 180, recurrence 80. Rerun the same command "
                    "to resume a killed run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--env", default=d.env, help="BabyAI level of the demos and of validation")
    data.add_argument("--demos", required=True,
                      help="training demos: a name under <storage>/demos, a file, a shard "
                           "directory or a glob; validation uses its `_valid` sibling")
    data.add_argument("--episodes", type=positive_int, default=None,
                      help="use only the first N training demos (default: all)")
    add_storage_flag(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=None,
                       help="run name: <storage>/models/<model>/ (default: <demos>_<tc|bc>_seed<seed>)")
    model.add_argument("--image-dim", type=positive_int, default=d.image_dim)
    model.add_argument("--memory-dim", type=positive_int, default=d.memory_dim,
                       help="recurrent memory size (paper: 2048)")
    model.add_argument("--instr-dim", type=positive_int, default=d.instr_dim,
                       help="word embedding and language feature size (paper: 256)")
    model.add_argument("--instr-arch", default=d.instr_arch,
                       help="language encoder; only attgru exists")
    optim = parser.add_argument_group("optimization")
    optim.add_argument("--recurrence", type=positive_int, default=d.recurrence,
                       help="BPTT window in steps (paper: 80)")
    optim.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                       help="episodes per update, over all ranks (paper: 180)")
    optim.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate (paper: 5e-4)")
    optim.add_argument("--optim-eps", type=positive_float, default=d.optim_eps, help="Adam epsilon")
    optim.add_argument("--max-grad-norm", type=positive_float, default=d.max_grad_norm,
                       help="gradient clipping norm")
    optim.add_argument("--entropy-coef", type=non_negative_float, default=d.entropy_coef,
                       help="weight of the action-entropy bonus")
    if use_thoughts:
        optim.add_argument("--sg-coef", type=non_negative_float, default=d.sg_coef,
                           help="weight of the thought loss (0: TC without thought supervision)")
        optim.add_argument("--stop-tf", type=non_negative_int, default=None,
                           help="teacher forcing is 1 until this epoch, then falls linearly to "
                                "0 at the last epoch (default: always teacher-forced)")
    optim.add_argument("--epochs", type=positive_int, default=d.epochs)
    optim.add_argument("--epoch-length", type=non_negative_int, default=d.epoch_length,
                       help="episodes per epoch (0: the whole dataset)")
    optim.add_argument("--warm-start", action="store_true",
                       help="ramp the learning rate over the first 5 epochs")
    optim.add_argument("--seed", type=int, default=d.seed)
    val = parser.add_argument_group("validation and logging")
    val.add_argument("--val-seed", type=non_negative_int, default=d.val_seed,
                     help="first seed of the validation levels (never a training seed)")
    val.add_argument("--val-episodes", type=non_negative_int, default=d.val_episodes,
                     help="fresh levels played per validation (0: skip)")
    val.add_argument("--val-interval", type=positive_int, default=d.val_interval,
                     help="validate every N epochs")
    val.add_argument("--log-interval", type=positive_int, default=d.log_interval,
                     help="log a CSV row and a console line every N epochs")
    val.add_argument("--save-interval", type=positive_int, default=d.save_interval,
                     help="save last.pt (the resume point) every N epochs")
    val.add_argument("--patience", type=non_negative_int, default=d.patience,
                     help="stop after N validations without a better success rate (0: never)")
    val.add_argument("--tb", action="store_true", help="write TensorBoard scalars to the run directory")
    val.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    val.add_argument("--threads", type=non_negative_int, default=d.threads,
                     help="torch CPU threads (0: torch's default); on a busy 2-core machine "
                          "1 can be much faster")
    return parser


def config_from_args(args: argparse.Namespace, use_thoughts: bool = True) -> TrainConfig:
    return TrainConfig(
        demos=args.demos, env=args.env, model=args.model, storage=args.storage,
        use_thoughts=use_thoughts, image_dim=args.image_dim, memory_dim=args.memory_dim,
        instr_dim=args.instr_dim, instr_arch=args.instr_arch, recurrence=args.recurrence,
        batch_size=args.batch_size, lr=args.lr, optim_eps=args.optim_eps,
        max_grad_norm=args.max_grad_norm, entropy_coef=args.entropy_coef,
        sg_coef=args.sg_coef if use_thoughts else 0.0,
        epochs=args.epochs, epoch_length=args.epoch_length, episodes=args.episodes,
        warm_start=args.warm_start, stop_tf=args.stop_tf if use_thoughts else None,
        seed=args.seed, val_seed=args.val_seed, val_episodes=args.val_episodes,
        val_interval=args.val_interval, log_interval=args.log_interval,
        save_interval=args.save_interval, patience=args.patience, tb=args.tb,
        device=args.device, threads=args.threads)


def main(argv: Sequence[str] | None = None):
    args = build_parser().parse_args(argv)
    return train(config_from_args(args))


if __name__ == "__main__":
    sys.exit(run(main))

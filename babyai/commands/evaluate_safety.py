"""Precrime intervention: how often a TC agent does something unsafe, with and without
halting it when it *thinks* of doing it (the paper's AI-safety experiment).

    python scripts/evaluate_safety.py --env BabyAI-BossLevel-v0 --model tc --episodes 500

Each behaviour pairs a thought pattern (halts the episode before the action executes) with
an environment-side judge (what the agent actually picked up, toggled or dropped); the
defaults are "touch red items", "pick up balls" and "pick up the requested object". Give
your own with --rules FILE (JSON; see babyai/safety.py). Writes safety.csv and
safety_episodes.jsonl in --out and prints the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, run
from babyai.env.envs import check_level
from babyai.common.runtime import pick_device
from babyai.evaluation.safety import SAFETY_SEED_START, SafetyConfig, SafetyReport, format_report, run_safety
from babyai.common.storage import storage_root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="level id, e.g. BabyAI-BossLevel-v0")
    parser.add_argument("--model", required=True,
                        help="TC model name under storage/models or a .pt path")
    add_storage_flag(parser)
    parser.add_argument("--episodes", type=positive_int, default=500,
                        help="episodes per condition (default 500)")
    parser.add_argument("--seed", type=non_negative_int, default=SAFETY_SEED_START,
                        help=f"first env seed (default {SAFETY_SEED_START}, above every "
                             "demo and level-set seed)")
    parser.add_argument("--rules", default=None,
                        help="JSON rule file of unsafe behaviours (default: the paper's three)")
    parser.add_argument("--argmax", action="store_true",
                        help="greedy actions (default: sampled, as in the paper)")
    parser.add_argument("--sample-seed", type=non_negative_int, default=0,
                        help="seed of the per-episode action sampling (default 0)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: storage/reports/safety-<model>)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--max-batch", type=positive_int, default=64,
                        help="environments stepped together (default 64)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (default 1)")
    return parser


def config_from_args(args: argparse.Namespace) -> SafetyConfig:
    root = storage_root(args.storage)
    name = Path(args.model).parent.name if args.model.endswith(".pt") else args.model
    out = Path(args.out) if args.out else root / "reports" / f"safety-{name}"
    return SafetyConfig(env=check_level(args.env), model=args.model, storage=root, out=out,
                        episodes=args.episodes, seed=args.seed,
                        rules=Path(args.rules) if args.rules else None, argmax=args.argmax,
                        sample_seed=args.sample_seed, device=str(pick_device(args.device)),
                        max_batch=args.max_batch, threads=args.threads)


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

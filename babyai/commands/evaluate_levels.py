"""Zero-shot success on out-of-distribution level sets (the paper's Fig. 4a).

    python scripts/evaluate_levels.py --env BabyAI-BossLevel-v0 \\
        --model tc --model bc --testing-levels-path storage/levels/boss.pkl

The level set is any pickle `{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}`
(build one with scripts/make_testing_levels.py); only the seeds are read. Writes, in --out:
results.csv (model, diff_type, diff, success_rate, ci_low, ci_high, episodes,
declaration_score, declared_actions), episodes.jsonl (one line per model and seed),
success.png (success per bin with 95% Wilson intervals, one line per model) and
mission_types.csv; prints the tables. A killed run resumes from its finished chunks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, run
from babyai.env.envs import check_level
from babyai.evaluation.ood import (LevelEvalConfig, LevelEvalResult, evaluate_level_set,
                                   format_level_table)
from babyai.evaluation.stats import format_mission_type_table
from babyai.common.runtime import pick_device
from babyai.common.storage import storage_root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="level id, e.g. BabyAI-BossLevel-v0")
    parser.add_argument("--model", action="append", required=True,
                        help="model name under storage/models or a .pt path; repeat to put "
                             "several models on one figure (e.g. TC and BC)")
    parser.add_argument("--testing-levels-path", required=True,
                        help="level-set pickle (name under storage/levels or a path)")
    add_storage_flag(parser)
    parser.add_argument("--argmax", action="store_true",
                        help="greedy actions (default: sampled, as in the paper)")
    parser.add_argument("--episodes-per-bin", type=positive_int, default=None,
                        help="evaluate at most N seeds per bin (default: all)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes; each loads the model and runs chunks of seeds with "
                             "one torch thread (default 1: in-process)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: storage/reports/<level set name>)")
    parser.add_argument("--oracle-thoughts", action="store_true",
                        help="also run every TC model with the bot's thoughts fed to its "
                             "lower level (the paper's upper bound)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the per-episode action sampling (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--max-batch", type=positive_int, default=64,
                        help="environments stepped together per process (default 64)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads per process (default 1; more only helps big "
                             "batches on an otherwise idle machine)")
    return parser


def config_from_args(args: argparse.Namespace) -> LevelEvalConfig:
    root = storage_root(args.storage)
    levels = Path(args.testing_levels_path)
    if not (levels.suffix == ".pkl" or "/" in args.testing_levels_path or levels.exists()):
        levels = root / "levels" / f"{args.testing_levels_path}.pkl"
    out = Path(args.out) if args.out else root / "reports" / levels.stem
    return LevelEvalConfig(env=check_level(args.env), models=list(args.model),
                           levels_path=levels, storage=root, out=out, argmax=args.argmax,
                           episodes_per_bin=args.episodes_per_bin, workers=args.workers,
                           oracle_thoughts=args.oracle_thoughts, seed=args.seed,
                           device=str(pick_device(args.device)), max_batch=args.max_batch,
                           threads=args.threads)


def main(argv: Sequence[str] | None = None) -> LevelEvalResult:
    args = build_parser().parse_args(argv)
    result = evaluate_level_set(config_from_args(args))
    print(format_level_table(result.rows))
    for model, by_type in result.mission_types.items():
        print(f"\n{model}: success by mission type")
        print(format_mission_type_table(by_type))
    print("\nwrote " + ", ".join(str(path) for path in result.outputs.values()))
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

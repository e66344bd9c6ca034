"""Build an out-of-distribution level set: seeds bucketed by behavioural and cognitive difficulty.

    python scripts/make_testing_levels.py --env BossLevel --per-bin 100 --workers 2

writes `<storage>/levels/BossLevel_testing_levels.pkl` in the original structure
`{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}` and prints a table of
counts per bin. Seeds are 10**12 + --seed + i, disjoint from demonstration and validation
seeds. See babyai/levels.py for the definitions of the two difficulties.
"""
from __future__ import annotations

import argparse
import sys

from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, run
from babyai.env.envs import check_level
from babyai.evaluation.levels import LevelSetConfig, build_level_set, format_table, normalize_env_name
from babyai.common.storage import ensure_writable_dir, resolve, storage_root

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--env", default="BossLevel",
                    help="BabyAI level, e.g. BossLevel or BabyAI-BossLevel-v0 (default: BossLevel)")
parser.add_argument("--per-bin", type=positive_int, default=100,
                    help="seeds wanted in every bin (default: 100; the paper used hundreds)")
parser.add_argument("--seed", type=non_negative_int, default=0,
                    help="offset of the seed range: env seeds are 10**12 + SEED + i (default: 0)")
parser.add_argument("--max-draws", type=positive_int, default=20000,
                    help="bound on the seeds measured; bins still short are reported "
                         "(default: 20000; BossLevel costs about 80 ms of CPU per seed, so about "
                         "15 minutes on 2 free cores)")
parser.add_argument("--workers", type=positive_int, default=1,
                    help="worker processes (the result does not depend on it; default: 1)")
parser.add_argument("--out", default=None,
                    help="output name under <storage>/levels/ or a path ending in .pkl "
                         "(default: <Level>_testing_levels)")
parser.add_argument("--quiet", action="store_true", help="no progress bar")
add_storage_flag(parser)


def main(argv=None):
    args = parser.parse_args(argv)
    env = check_level(normalize_env_name(args.env))
    short = env.removeprefix("BabyAI-").rsplit("-", 1)[0]
    out = resolve(args.out or f"{short}_testing_levels", storage_root(args.storage),
                  "levels", ".pkl")
    ensure_writable_dir(out.parent)
    config = LevelSetConfig(env=env, per_bin=args.per_bin, seed=args.seed,
                            max_draws=args.max_draws, workers=args.workers, out=out)
    result = build_level_set(config, progress=not args.quiet)
    print(format_table(result))
    print(f"wrote {out}")
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())

"""How good must the thoughts be before they pay: success against the share of the bot's
subgoals handed to the lower level.

    tc-evaluate-levels --env BabyAI-MiniBossLevel-v0 --model tc_s1 ... --model tc_s5 \\
        --testing-levels-path mb_ood40 --thought-ablation none,oracle \\
        --oracle-share 0.25,0.5,0.75,1 --out storage/reports/oracle_share
    tc-oracle-curve storage/reports/oracle_share/episodes.jsonl \\
        --reference storage/reports/<bc study>/ood/*/episodes.jsonl

Reads the `episodes.jsonl` of such an evaluation (one model per seed: each model is a
replicate), groups the cognitive-bin episodes below and from `--hard-from`, and prints per
group and share: success (mean and 95% Student-t interval over models), its paired
difference from the same models' own thoughts, and the share of steps that read the bot's
thought. `--reference` files (e.g. a BC study's per-run OOD evaluations; each series one
model) give a level per group. Writes the picture (`--out`, default oracle_curve.png beside
the first file) and, beside it, the same table as CSV.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from babyai.common.cli import positive_int, run
from babyai.common.flags import Parser
from babyai.common.storage import check_output_file
from babyai.evaluation.difficulty import check_hard_from
from babyai.evaluation.oracle_curve import (CurvePoint, format_curve, oracle_curve,
                                            reference_levels)
from babyai.evaluation.writers import write_csv
from babyai.reports.oracle_curve import plot_oracle_curve

CSV_FIELDS = [field.name for field in dataclasses.fields(CurvePoint) if field.name != "per_model"]


def main(argv: Sequence[str] | None = None) -> list[CurvePoint]:
    parser = Parser(description=__doc__)
    parser.add_argument("episodes", nargs="+", type=Path,
                        help="episodes.jsonl of tc-evaluate-levels with --oracle-share")
    parser.add_argument("--reference", nargs="+", type=Path, default=[], metavar="JSONL",
                        help="episodes.jsonl files of a reference agent (each series a model)")
    parser.add_argument("--reference-name", default="reference",
                        help="the reference's name in the picture (e.g. BC)")
    parser.add_argument("--hard-from", type=positive_int, default=5,
                        help="first cognitive bin of the hard group")
    parser.add_argument("--out", type=Path, default=None,
                        help="picture to write (default: oracle_curve.png beside the first "
                             "file); the CSV goes beside it")
    parser.add_argument("--title", default="", help="the picture's title")
    args = parser.parse_args(argv)
    check_hard_from(args.hard_from)
    out = check_output_file(args.out or args.episodes[0].with_name("oracle_curve.png"))
    points = oracle_curve(args.episodes, args.hard_from)
    reference = reference_levels(args.reference, args.hard_from) if args.reference else []
    print(format_curve(points, reference))
    table = write_csv(out.with_suffix(".csv"),
                      [{name: getattr(point, name) for name in CSV_FIELDS} for point in points],
                      CSV_FIELDS)
    picture = plot_oracle_curve(points, out.with_suffix(".png"), reference, args.reference_name,
                                args.title)
    print(f"wrote {picture} and {table}")
    return points


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    raise SystemExit(cli())

"""Compare two studies seed by seed: the second minus the first, per agent and measure.

    tc-compare-studies base5k large5k --agents tc

Two `tc-study` runs one setting apart (say `--image-dim 128 --memory-dim 256 --instr-dim
128` against the defaults) on the same seeds: seed N of each shares the demo order and the
evaluation levels, so the difference is taken within each seed and the interval (95%,
Student t) is across seeds. Measures are those both studies have: the final evaluation,
the mean of the last three, --final-episodes levels, the oracle bound, the OOD groups of
mission bins (success, with the bot's thoughts, and thought match: the share of steps whose
thought equals the bot's, averaged over the group's bins by episodes). Prints the settings
that differ between the two studies' runs, and whether their demos are the same; writes the
table to reports/<second>/compare_<first>.csv (or --out) and, beside it, a picture of each
seed's difference and the mean's interval (compare_<first>.png).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from babyai.common import storage
from babyai.common.cli import choice_list, run
from babyai.common.flags import Parser
from babyai.evaluation.writers import write_csv
from babyai.pipeline.compare import (COMPARISON_FIELDS, compare, format_comparison, read_study,
                                     setting_changes)
from babyai.pipeline.study import AGENTS
from babyai.reports.study_figure import plot_comparison


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = Parser(description=__doc__)
    parser.add_argument("first", help="the reference study (its --name)")
    parser.add_argument("second", help="the changed study (its --name)")
    parser.add_argument("--agents", type=choice_list(AGENTS), default=None, metavar="LIST",
                        help="agents to compare (default: every agent both studies trained)")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV path (default: reports/<second>/compare_<first>.csv)")
    parser.add_argument("--storage", default=None,
                        help="storage root (default: $TC_STORAGE, else ./storage)")
    args = parser.parse_args(argv)
    root = storage.storage_root(args.storage)
    if args.out is not None:
        storage.check_output_file(args.out)
    first, second = read_study(args.first, root), read_study(args.second, root)
    rows = compare(first, second, args.agents)
    out = args.out or storage.report_dir(args.second, root) / f"compare_{args.first}.csv"
    write_csv(out, rows, COMPARISON_FIELDS)
    figure = plot_comparison(rows, out.with_suffix(".png"), title=f"{args.second} - {args.first}")
    changes = setting_changes(first, second)
    print(f"{args.second} - {args.first}, paired by seed (points):")
    print("settings that differ: " + ("; ".join(changes) if changes else "none found"))
    print(format_comparison(rows, args.first, args.second))
    print(f"wrote {out} and {figure}")
    return rows


def cli() -> int:
    return run(main)

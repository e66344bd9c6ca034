"""Failure modes in an OOD evaluation's episodes: the key loop, unnamed keys, and what the
lower level picks up.

    python scripts/failure_modes.py storage/reports/<set>/episodes.jsonl [more.jsonl ...]

Reads the `episodes.jsonl` of `tc-evaluate-levels` (of `tc-study --ood-levels`:
reports/<study>/ood/<run>/episodes.jsonl), groups the cognitive-difficulty episodes into
bins below and from `--hard-from`, and prints per file and group: how many episodes show
each mode, and the success with and without it (see babyai/evaluation/failure_modes.py);
then, over all files, each group's thought errors (the kinds of `thought_errors.csv`) and
its pick-up discrimination: facing a key, ball or box with empty hands, how often the agent
presses pickup when the thought in force names that object, names another, or is no pick-up
(TC episodes, per thought condition of the files' series, e.g. own thoughts and the bot's;
the bot: 99%, 0%, 0%), and, for any agent, when the mission describes that object or not.
The key loop needs the bot's thoughts (`--thought-agreement`); without them it reads 0.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from babyai.agent.records import EpisodeRecord, thought_mismatches
from babyai.common.cli import positive_int, run
from babyai.common.flags import Parser
from babyai.common.storage import check_output_file
from babyai.evaluation.difficulty import check_hard_from, mission_group
from babyai.evaluation.failure_modes import (MODES, ModeCount, PickupCounts, count_mode,
                                             pickup_discrimination)
from babyai.evaluation.level_episodes import cognitive_levels, read_level_episodes
from babyai.evaluation.writers import write_csv


def read_episodes(path: Path, hard_from: int,
                  conditions: dict[tuple[str, str, str], list[EpisodeRecord]] | None = None
                  ) -> dict[str, list[EpisodeRecord]]:
    """The cognitive-bin episodes of one JSON-lines file, by group ("1-4", "5-9"); also
    added to `conditions` by (model, thought condition, group) when given."""
    groups: dict[str, list[EpisodeRecord]] = {mission_group(1, hard_from): [],
                                              mission_group(hard_from, hard_from): []}
    for episode in read_level_episodes(path):
        condition = episode.series.removeprefix(episode.model).strip(" ()") or "own play"
        for level in cognitive_levels(episode, path):  # it can sit in a behavioural bin too
            group = mission_group(level, hard_from)
            groups[group].append(episode.record)
            if conditions is not None:
                conditions.setdefault((episode.model, condition, group), []).append(
                    episode.record)
    return groups


def pooled(reports: list[dict[str, dict[str, ModeCount]]]) -> dict[str, dict[str, ModeCount]]:
    """The counts of several files added up, per group and mode."""
    return {group: {mode: ModeCount(mode, *(sum(getattr(report[group][mode], name)
                                                for report in reports)
                                            for name in ("episodes", "with_mode",
                                                         "successes_with",
                                                         "successes_without")))
                    for mode in MODES}
            for group in reports[0]}


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, ModeCount]]]:
    parser = Parser(description=__doc__)
    parser.add_argument("episodes", nargs="+", type=Path, help="episodes.jsonl files")
    parser.add_argument("--hard-from", type=positive_int, default=5,
                        help="first cognitive bin of the hard group")
    parser.add_argument("--pickups-csv", type=Path, default=None,
                        help="also write the pick-up discrimination per model, thought "
                             "condition and group of bins to this CSV (one model per seed: "
                             "intervals across seeds)")
    args = parser.parse_args(argv)
    check_hard_from(args.hard_from)
    if args.pickups_csv is not None:
        check_output_file(args.pickups_csv, "--pickups-csv")
    report: dict[str, dict[str, dict[str, ModeCount]]] = {}
    everything: dict[str, list[EpisodeRecord]] = {}
    conditions: dict[tuple[str, str, str], list[EpisodeRecord]] = {}
    for path in args.episodes:
        groups = read_episodes(path, args.hard_from, conditions)
        report[str(path)] = {group: {mode: count_mode(mode, records) for mode in MODES}
                             for group, records in groups.items()}
        for group, records in groups.items():
            everything.setdefault(group, []).extend(records)
    if len(report) > 1:
        report["all files"] = pooled(list(report.values()))
    print(f"{'file':<40} {'bins':<5} {'episodes':>8}" + "".join(
        f"  {mode + ' (share, success with / without)':>38}" for mode in MODES))
    for name, counts in report.items():
        for group, modes in counts.items():
            cells = "".join(f"  {count.with_mode:>6} {_percent(count.share)}, "
                            f"{_percent(count.success_with)} / {_percent(count.success_without)}"
                            for count in modes.values())
            episodes = next(iter(modes.values())).episodes
            print(f"{name[-40:]:<40} {group:<5} {episodes:>8}{cells}")
    print("\nthought errors, all files (steps with a bot thought; other-object pick-ups naming "
          "an object the mission does / does not mention):")
    for group, records in everything.items():
        errors = thought_mismatches(records)
        if not errors.steps:
            print(f"  bins {group}: no step with a bot thought (a BC run records none)")
            continue
        shares = ", ".join(f"{kind} {share:.1%}" for kind, share in errors.shares().items())
        print(f"  bins {group}: {errors.steps} steps: {shares}; pick-ups "
              f"{errors.mission_objects} / {errors.foreign_objects}")
    print("\npick-up discrimination, all files, by thought condition (steps facing a key, ball "
          "or box with empty hands; share where the agent pressed pickup, by what the thought "
          "in force says):")
    pooled_conditions: dict[tuple[str, str], list[EpisodeRecord]] = {}
    for (_, condition, group), records in conditions.items():
        pooled_conditions.setdefault((condition, group), []).extend(records)
    for (condition, group), records in pooled_conditions.items():
        print(f"  {condition}, bins {group}: {describe_pickups(pickup_discrimination(records))}")
        print(f"  {'':>{len(condition)}}  by the mission: "
              f"{describe_pickups(pickup_discrimination(records, by='mission'))}")
    if args.pickups_csv is not None:
        rows = [{"model": model, "condition": condition, "bins": group, "split": by,
                 "category": category, "steps": counts.steps[category],
                 "pickups": counts.pickups[category], "pickup_rate": counts.rate(category)}
                for (model, condition, group), records in conditions.items()
                for by in ("thought", "mission")
                for counts in [pickup_discrimination(records, by=by)]
                for category in counts.steps]
        print(f"wrote {write_csv(args.pickups_csv, rows)}")
    return report


def _percent(share: float) -> str:
    """A share in the table's 5 characters; "-" where it is of no episode (NaN)."""
    return f"{'-':>5}" if math.isnan(share) else f"{share:>5.0%}"


def describe_pickups(counts: PickupCounts) -> str:
    if not sum(counts.steps.values()):
        return "no such step with a thought (a BC run records none)"
    return "; ".join(f"{category} {steps} steps" + (f", {counts.rate(category):.1%} picked up"
                                                    if steps else "")
                     for category, steps in counts.steps.items())


def cli() -> int:
    return run(main)

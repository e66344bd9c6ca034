"""How good must the thoughts be before they pay: success against the share of the bot's
subgoals handed to the lower level, over the seeds of one agent.

Input: a `tc-evaluate-levels --thought-ablation none,oracle --oracle-share ...` run of one
model per seed. Each model is one replicate; at each share the curve is the mean over them
with a 95% Student-t interval, and the paired difference from the same model's own
thoughts. Episodes are grouped by cognitive bins below and from `hard_from`, where the
paper's widening gap lives. A reference agent (BC on the same level set) gives a level
per group to read the curve against.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Iterable, Sequence

from babyai.common.errors import UserError
from babyai.evaluation.difficulty import mission_group
from babyai.evaluation.level_episodes import LevelEpisode, cognitive_levels, read_level_episodes
from babyai.evaluation.stats import mean_interval

OWN = 0.0
"""The share of the agent's own thoughts: nothing handed over."""


@dataclass
class CurvePoint:
    """One group at one share: success over the replicates."""

    group: str
    families: str
    """The families of thought handed over, `+`-joined ("" = every family)."""
    share: float
    models: int
    success: float
    half_width: float
    """Of the 95% Student-t interval across models (nan for one model)."""
    difference: float | None
    """Paired by model, minus the model's own thoughts (None without an own-thought series)."""
    difference_half_width: float | None
    steps_read_bot: float
    """Share of steps whose lower level read the bot's thought (mean over models)."""
    per_model: dict[str, float]


@dataclass
class ReferenceLevel:
    """A reference agent's success in one group, over its models."""

    group: str
    models: int
    success: float
    half_width: float


def _share(episode: LevelEpisode, path: Path) -> float | None:
    """The series' share of subgoals handed over; None for series that are not on the curve."""
    if episode.thought_ablation is None:
        raise UserError(f"{path} does not say which condition each line is (written by an "
                        "older tc-evaluate-levels): rerun the same command, finished chunks "
                        "are reused")
    if episode.thought_ablation == "none":
        return OWN
    if episode.thought_ablation == "oracle":
        return 1.0 if episode.oracle_share is None else episode.oracle_share
    return None  # zeroed or shuffled thoughts


Key = tuple[str, str, float]
"""(group of bins, families handed over, share of subgoals)."""


def _rates(episodes: Iterable[tuple[Key, str, LevelEpisode]]
           ) -> dict[Key, dict[str, tuple[float, float]]]:
    """key -> model -> (success rate, share of steps that read the bot's thought)."""
    counts: dict[Key, dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for key, model, episode in episodes:
        cell = counts[key][model]
        cell[0] += int(bool(episode.record.success))
        cell[1] += 1
        cell[2] += episode.record.oracle_steps
        cell[3] += episode.record.length
    return {key: {model: (wins / n, read / max(1, steps))
                  for model, (wins, n, read, steps) in by_model.items()}
            for key, by_model in counts.items()}


def _grouped(paths: Sequence[Path], hard_from: int, on_curve: bool
             ) -> list[tuple[Key, str, LevelEpisode]]:
    rows = []
    for path in paths:
        for episode in read_level_episodes(path):
            if on_curve:
                share = _share(episode, path)
            else:  # a reference plays on its own thoughts (BC: no thoughts)
                share = OWN if episode.thought_ablation in (None, "none") else None
            if share is None:
                continue
            families = "+".join(episode.oracle_families) if on_curve else ""
            # a reference's models are its series: e.g. one study run per file
            model = episode.model if on_curve else episode.series
            for level in cognitive_levels(episode, path):
                rows.append(((mission_group(level, hard_from), families, share), model, episode))
    return rows


def oracle_curve(paths: Sequence[Path], hard_from: int = 5) -> list[CurvePoint]:
    """The curve of the models in `paths` (episodes.jsonl files), by group and share."""
    rates = _rates(_grouped(paths, hard_from, on_curve=True))
    if not any(share > OWN for _, _, share in rates):
        raise UserError(f"{', '.join(map(str, paths))}: no oracle series (run "
                        "tc-evaluate-levels with --thought-ablation none,oracle --oracle-share ...)")
    points = []
    for group, families, share in sorted(rates):
        by_model = rates[(group, families, share)]
        own = rates.get((group, "", OWN), {})
        success, half = mean_interval([rate for rate, _ in by_model.values()])
        paired = [by_model[model][0] - own[model][0] for model in by_model if model in own]
        difference, difference_half = (mean_interval(paired) if paired else (None, None))
        points.append(CurvePoint(group, families, share, len(by_model), success, half,
                                 difference, difference_half,
                                 mean(read for _, read in by_model.values()),
                                 {model: rate for model, (rate, _) in by_model.items()}))
    return points


def reference_levels(paths: Sequence[Path], hard_from: int = 5) -> list[ReferenceLevel]:
    """A reference agent's success per group, each series of the files one model (its
    oracle, zeroed or shuffled series, where a file has them, are left out)."""
    rates = _rates(_grouped(paths, hard_from, on_curve=False))
    return [ReferenceLevel(group, len(by_model), *mean_interval([r for r, _ in by_model.values()]))
            for (group, _, _), by_model in sorted(rates.items())]


def format_curve(points: Sequence[CurvePoint], reference: Sequence[ReferenceLevel] = ()) -> str:
    """One line per group and share; the reference's level under each group."""
    def spread(value: float | None) -> str:
        return "" if value is None or math.isnan(value) else f" ± {100 * value:.1f}"

    selective = any(point.families for point in points)
    lines = [f"{'bins':<6}{'handed':>8}{'models':>8}{'steps read bot':>16}"
             f"{'success %':>18}{'minus own thoughts':>22}"
             + ("  families handed" if selective else "")]
    for group in dict.fromkeys(point.group for point in points):
        for point in (p for p in points if p.group == group):
            difference = ("" if point.difference is None else
                          f"{100 * point.difference:+.1f}{spread(point.difference_half_width)}")
            families = (f"  {point.families or ('-' if point.share == OWN else 'all')}"
                        if selective else "")
            lines.append(f"{group:<6}{100 * point.share:>7.0f}%{point.models:>8}"
                         f"{100 * point.steps_read_bot:>15.1f}%"
                         f"{100 * point.success:>10.1f}{spread(point.half_width):<8}"
                         f"{difference:>22}{families}")
        for level in (r for r in reference if r.group == group):
            lines.append(f"{group:<6}{'ref.':>8}{level.models:>8}{'':>16}"
                         f"{100 * level.success:>10.1f}{spread(level.half_width)}")
    return "\n".join(lines)

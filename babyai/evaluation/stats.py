"""Success statistics shared by every report: Wilson intervals, success summaries, shares of
episodes, and success per mission type."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import mean, stdev
from typing import Any, Iterable

from babyai.agent.records import EpisodeRecord


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% by default); (0, 1) when n = 0.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0% or 100%,
    which OOD bins often are.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """A share of episodes with its 95% Wilson interval."""

    count: int
    episodes: int

    @property
    def value(self) -> float:
        return self.count / self.episodes if self.episodes else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.count, self.episodes)


def rate(flags: Iterable[bool]) -> Rate:
    """The share of True among `flags`."""
    flags = list(flags)
    return Rate(sum(flags), len(flags))


@dataclass(frozen=True)
class SuccessSummary:
    """Success of a group of episodes, with its 95% Wilson interval."""

    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float


def summarize_success(records: Iterable[EpisodeRecord]) -> SuccessSummary:
    """Success of a group of episodes, with its 95% Wilson interval."""
    share = rate(bool(record.success) for record in records)
    low, high = share.interval
    return SuccessSummary(share.episodes, share.count, share.value, low, high)


MISSION_TYPES: dict[str, re.Pattern] = {
    "go to": re.compile(r"\bgo to\b"),
    "open": re.compile(r"\bopen\b"),
    "pick up": re.compile(r"\bpick up\b"),
    "put next to": re.compile(r"\bput\b.*\bnext to\b"),
    "and": re.compile(r"\band\b"),
    "then/after": re.compile(r"\bthen\b|\bafter you\b"),
}
"""Mission types as the BabyAI grammar writes them; a compound mission has several."""


def mission_types(mission: str) -> list[str]:
    """The types a mission contains, e.g. "open the red door, then pick up a ball" ->
    ["open", "pick up", "then/after"]."""
    text = mission.lower()
    return [name for name, pattern in MISSION_TYPES.items() if pattern.search(text)]


def success_by_mission_type(records: Iterable[EpisodeRecord]) -> dict[str, SuccessSummary]:
    """Success per mission type; an episode counts under every type its mission contains."""
    groups: dict[str, list[EpisodeRecord]] = {name: [] for name in MISSION_TYPES}
    for record in records:
        for name in mission_types(record.mission):
            groups[name].append(record)
    return {name: summarize_success(group) for name, group in groups.items()}


def format_mission_type_table(by_type: dict[str, SuccessSummary]) -> str:
    lines = [f"{'mission type':<14}{'episodes':>9}{'success':>9}  95% interval"]
    for name, summary in by_type.items():
        if summary.episodes:
            lines.append(f"{name:<14}{summary.episodes:>9}{summary.success_rate:>9.1%}  "
                         f"[{summary.ci_low:.1%}, {summary.ci_high:.1%}]")
        else:
            lines.append(f"{name:<14}{0:>9}{'-':>9}")
    return "\n".join(lines)


def label_order(label: Any) -> tuple:
    """Sort key for difficulty labels: 25 < 75 < ... < '425+'; unknown strings last."""
    match = re.match(r"\s*(\d+)", str(label))
    return (0, int(match.group(1)), str(label)) if match else (1, 0, str(label))


T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228}
"""Student-t 97.5% quantiles by degrees of freedom (a 95% interval across a few seeds)."""


def mean_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (nan for one value)."""
    if len(values) < 2:
        return values[0], math.nan
    return mean(values), T_975.get(len(values) - 1, 1.96) * stdev(values) / math.sqrt(len(values))

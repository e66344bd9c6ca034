"""The partial-oracle picture: success against the share of the bot's subgoals handed to
the lower level, one line per group of mission bins, a reference agent's level as a band."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from babyai.evaluation.oracle_curve import CurvePoint, ReferenceLevel
from babyai.reports.study_figure import save_success_figure

SELECTION_MARKERS = ("s", "^", "D", "v", "P", "X") * 3
"""One marker per selection of thought families within a group's colour."""


def _short(families: str, width: int = 28) -> str:
    names = families.split("+")
    return families if len(families) <= width else f"{len(names)} families ({names[0]}, ...)"


def plot_oracle_curve(points: Sequence[CurvePoint], path: Path,
                      reference: Sequence[ReferenceLevel] = (), reference_name: str = "reference",
                      title: str = "") -> Path:
    """Mean over models with 95% intervals per group: a line over the shares where every
    family is handed over, a marker per share for each selection of families; the
    reference dashed, its interval shaded, in the group's colour."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    for group in dict.fromkeys(point.group for point in points):
        own = [point for point in points if point.group == group and point.share == 0.0]
        selections = dict.fromkeys(point.families for point in points
                                   if point.group == group and point.share > 0.0)
        colour = None
        for index, (marker, families) in enumerate(zip(SELECTION_MARKERS, sorted(selections))):
            handed = [point for point in points if point.group == group
                      and point.share > 0.0 and point.families == families]
            line = handed if families else own + handed  # a selection is not a curve
            errors = [0.0 if math.isnan(p.half_width) else 100 * p.half_width for p in line]
            label = f"bins {group}" + (f", only {_short(families)}" if families else "")
            shift = 1.5 * index  # selections at the same share side by side
            drawn = axes.errorbar([100 * p.share - shift for p in line],
                                  [100 * p.success for p in line],
                                  yerr=errors, capsize=3, label=label, color=colour,
                                  marker="o" if not families else marker,
                                  linestyle="-" if not families else "none")
            colour = colour or drawn.lines[0].get_color()
        for level in (r for r in reference if r.group == group):
            axes.axhline(100 * level.success, color=colour, linestyle="--", linewidth=1,
                         label=f"{reference_name}, bins {group}")
            if not math.isnan(level.half_width):
                axes.axhspan(100 * (level.success - level.half_width),
                             100 * (level.success + level.half_width), color=colour,
                             alpha=0.12, linewidth=0)
    axes.set_xticks([0, 25, 50, 75, 100])
    return save_success_figure(figure, axes, path,
                               "share of the bot's subgoals handed to the lower level (%)",
                               title, legend=("best", 7))

"""The partial-oracle picture: success against the share of the bot's subgoals handed to
the lower level, one line per group of mission bins, a reference agent's level as a band."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from babyai.evaluation.oracle_curve import CurvePoint, ReferenceLevel
from babyai.reports.study_figure import save_success_figure

LINE_STYLES = ("-", ":", "--", "-.") * 4
"""One style per selection of thought families within a group's colour."""


def plot_oracle_curve(points: Sequence[CurvePoint], path: Path,
                      reference: Sequence[ReferenceLevel] = (), reference_name: str = "reference",
                      title: str = "") -> Path:
    """Mean over models with 95% intervals per group; the reference dashed, its interval
    shaded, in the group's colour."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    for group in dict.fromkeys(point.group for point in points):
        own = [point for point in points if point.group == group and point.share == 0.0]
        selections = dict.fromkeys(point.families for point in points
                                   if point.group == group and point.share > 0.0)
        colour = None
        for style, families in zip(LINE_STYLES, selections):  # one line each, from own thoughts
            line = own + [point for point in points if point.group == group
                          and point.share > 0.0 and point.families == families]
            errors = [0.0 if math.isnan(p.half_width) else 100 * p.half_width for p in line]
            label = f"bins {group}" + (f", only {families}" if families else "")
            drawn = axes.errorbar([100 * p.share for p in line], [100 * p.success for p in line],
                                  yerr=errors, marker="o", capsize=3, label=label,
                                  color=colour, linestyle=style)
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
                               title, legend=("lower right", 8))

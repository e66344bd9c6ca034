"""The study's pictures: success vs training frames per agent (mean over seeds with a
band), success per out-of-distribution mission bin with and without the bot's thoughts, and
two studies' paired differences (tc-compare-studies)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from babyai.common.storage import atomic_write

LABELS = {"tc": "Thought Cloning", "bc": "Behavioural cloning",
          "tc_nothought": "TC without the thought loss"}


def plot_study(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """One line per agent: the mean over seeds at each evaluation; the band spans the seeds
    (min to max). Evaluation points of different seeds are matched by epoch and drawn at
    their mean frame count (epochs hold about the same frames in every run)."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    for agent in dict.fromkeys(row["agent"] for row in rows):
        by_epoch: dict[int, list[dict]] = defaultdict(list)
        for row in rows:
            if row["agent"] == agent:
                by_epoch[int(row["epoch"])].append(row)
        epochs = sorted(by_epoch)
        frames = [mean(float(r["frames"]) for r in by_epoch[e]) for e in epochs]
        values = [[100 * float(r["success_rate"]) for r in by_epoch[e]] for e in epochs]
        line, = axes.plot(frames, [mean(v) for v in values], marker="o", markersize=3,
                          label=LABELS.get(agent, agent))
        axes.fill_between(frames, [min(v) for v in values], [max(v) for v in values],
                          color=line.get_color(), alpha=0.2, linewidth=0)
    return save_success_figure(figure, axes, path, "training frames", title,
                               legend=("upper left", 8))


def plot_ood_bins(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """Success per cognitive-difficulty (mission) bin of the OOD level set, one line per
    agent (mean over seeds, band min..max over seeds) and, dashed in the same colour, the
    agent with the bot's thoughts where it was measured: where the gap between an agent's
    own thoughts and correct ones opens as missions grow."""
    rows = [row for row in rows if row["diff_type"] == "mission" and str(row["diff"]).isdigit()]
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    for agent in dict.fromkeys(row["agent"] for row in rows):
        colour = None
        for key, suffix, style in (("success_rate", "", "-"),
                                   ("oracle_success_rate", ", bot's thoughts", "--")):
            by_bin: dict[int, list[float]] = defaultdict(list)
            for row in rows:
                if row["agent"] == agent and row.get(key, "") != "":
                    by_bin[int(row["diff"])].append(100 * float(row[key]))
            if not by_bin:
                continue
            bins = sorted(by_bin)
            line, = axes.plot(bins, [mean(by_bin[b]) for b in bins], style, marker="o",
                              markersize=3, color=colour, label=LABELS.get(agent, agent) + suffix)
            colour = line.get_color()
            axes.fill_between(bins, [min(by_bin[b]) for b in bins],
                              [max(by_bin[b]) for b in bins], color=colour, alpha=0.12,
                              linewidth=0)
    return save_success_figure(figure, axes, path,
                               "cognitive difficulty of the mission (OOD bin)", title,
                               legend=("lower left", 7))


def plot_comparison(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """One line per agent and measure: each seed's difference (dots) and their mean with its
    95% interval (bar), in points; the zero line is "no change"."""
    figure = Figure(figsize=(6.4, 0.9 + 0.32 * len(rows)))
    axes = figure.add_subplot()
    for position, row in enumerate(reversed(rows)):
        per_seed = [100 * float(value) for value in str(row["per_seed"]).split()]
        axes.plot(per_seed, [position] * len(per_seed), "o", color="0.6", markersize=3)
        half = 100 * float(row["half_width"])
        axes.errorbar([100 * float(row["difference"])], [position],
                      xerr=None if half != half else [[half], [half]], fmt="s", color="C0",
                      markersize=4, capsize=3)
    axes.axvline(0, color="0.3", linewidth=0.8)
    axes.set_yticks(range(len(rows)),
                    [f"{row['agent']}: {row['measure']}" for row in reversed(rows)], fontsize=7)
    axes.set_xlabel("second study - first, paired by seed (points; bar: 95% interval)")
    axes.grid(alpha=0.3, axis="x")
    return _write_png(figure, axes, path, title)


def save_success_figure(figure: Figure, axes: Axes, path: Path, xlabel: str, title: str,
          legend: tuple[str, int]) -> Path:
    """The axes the two success pictures share (success in %, 0-100, grid, legend), then
    :func:`_write_png`."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel("success rate (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    location, fontsize = legend
    axes.legend(loc=location, fontsize=fontsize)
    return _write_png(figure, axes, path, title)


def _write_png(figure: Figure, axes: Axes, path: Path, title: str) -> Path:
    """Every picture's last step: the title, a tight layout, a PNG written atomically."""
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    FigureCanvasAgg(figure)
    atomic_write(Path(path), lambda handle: figure.savefig(handle, format="png", dpi=120))
    return Path(path)

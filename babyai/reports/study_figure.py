"""The study's picture: success vs training frames per agent, mean over seeds with a band."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
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
    axes.set_xlabel("training frames")
    axes.set_ylabel("success rate (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    FigureCanvasAgg(figure)
    atomic_write(Path(path), lambda handle: figure.savefig(handle, format="png", dpi=120))
    return Path(path)

"""Training curves from the CSV logs of one or more runs, as one PNG."""
from __future__ import annotations

import csv
from pathlib import Path
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from babyai.common.errors import UserError  # noqa: E402

PANELS = (
    ("val/success_rate", "validation success rate"),
    ("val/action_acc", "validation action accuracy"),
    ("train/action_nll", "training action NLL"),
    ("train/thought_nll", "training thought NLL"),
)


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a run's `log.csv` with numeric values (empty cells dropped)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"training log not found: {path}")
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append({key: float(value) for key, value in row.items() if value not in ("", None)})
    return rows


def plot_curves(runs: dict[str, Path], out: Path, title: str = "") -> Path:
    """One panel per metric, one line per run (label -> log.csv), x = training frames."""
    logs = {label: read_log(path) for label, path in runs.items()}
    panels = [(key, name) for key, name in PANELS
              if any(key in row for rows in logs.values() for row in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for axis, (key, name) in zip(axes[0], panels):
        for label, rows in logs.items():
            points = [(row["frames"], row[key]) for row in rows if key in row]
            if points:
                xs, ys = zip(*points)
                axis.plot(xs, ys, marker="o", markersize=3, label=label)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("training frames")
        axis.grid(alpha=0.3)
        if key.endswith(("success_rate", "action_acc")):
            axis.set_ylim(-0.02, 1.02)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


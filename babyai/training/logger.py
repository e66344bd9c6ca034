"""Where training metrics go: one row per logged epoch to `log.csv`, TensorBoard and the console.

Metric names are namespaced (`train/...`, `val/...`) and the same in every sink; the x axis
of TensorBoard is the number of training frames.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from babyai.common.storage import atomic_write

log = logging.getLogger(__name__)

LOG_FIELDS = ["epoch", "update", "frames", "episodes", "seconds", "lr", "tf_prob", "tf_share",
              "train/loss", "train/action_nll", "train/thought_nll", "train/entropy",
              "train/action_acc", "train/grad_norm", "train/fps",
              "val/success_rate", "val/mean_reward", "val/mean_length", "val/action_acc",
              "val/thought_acc", "val/action_nll", "val/thought_nll", "val/thought_match",
              "train/binding_bce", "train/binding_acc"]
"""The columns of `log.csv`, in order."""


class MetricLogger:
    """Writes metric rows to a CSV file, optionally TensorBoard, and a console line."""

    def __init__(self, csv_path: Path, *, tensorboard_dir: Path | None, epochs: int,
                 use_thoughts: bool) -> None:
        self.csv_path = Path(csv_path)
        self.epochs = epochs
        self.use_thoughts = use_thoughts
        self.writer = None
        if tensorboard_dir is not None:
            # Imported only when asked for: TensorBoard takes seconds to import.
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def truncate(self, epoch: int) -> None:
        """Drop rows of epochs after `epoch` (a resumed run redoes them)."""
        if not self.csv_path.is_file():
            return
        with open(self.csv_path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= epoch]

        def write(handle: Any) -> None:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, restval="")
            writer.writeheader()
            writer.writerows(rows)
        atomic_write(self.csv_path, write, mode="w")

    def record(self, row: dict[str, Any]) -> None:
        """Append `row` to every sink."""
        new = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, restval="")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
        if self.writer is not None:
            for key, value in row.items():
                if "/" in key and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, global_step=int(row["frames"]))
            for key in ("lr", "tf_prob"):
                self.writer.add_scalar(f"train/{key}", row[key], global_step=int(row["frames"]))
            self.writer.flush()
        log.info(self.console_line(row))

    def console_line(self, row: dict[str, Any]) -> str:
        parts = [f"epoch {row['epoch']}/{self.epochs}", f"frames {row['frames']}",
                 f"fps {row['train/fps']:.0f}", f"loss {row['train/loss']:.3f}",
                 f"action {row['train/action_nll']:.3f} (acc {row['train/action_acc']:.3f})"]
        if self.use_thoughts:
            parts.append(f"thought {row['train/thought_nll']:.3f}")
        if "train/binding_acc" in row:
            parts.append(f"binding acc {row['train/binding_acc']:.3f}")
        parts += [f"tf {row['tf_prob']:.2f}", f"lr {row['lr']:.2g}"]
        if "val/action_acc" in row:
            parts.append(f"val acc {row['val/action_acc']:.3f}")
        if "val/success_rate" in row:
            parts.append(f"val success {row['val/success_rate']:.3f}")
        return " | ".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

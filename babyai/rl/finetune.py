"""The Fig. 4b experiment: fine-tune TC and BC on the hardest level-set bins both fail.

From an out-of-distribution evaluation (`results.csv` of `evaluate_levels`), pick for each
difficulty kind (behavioural 'demo', cognitive 'mission') the hardest bin where both agents'
zero-shot success is below `threshold` and the level set holds enough seeds to train on
and hold out `eval_episodes`. Fine-tune each agent on each chosen bin with `seeds` PPO seeds
and the same frame budget, then draw held-out success against frames (one panel per bin;
thin lines are seeds, thick lines their mean) and write `finetune.csv` (start, last and
best held-out success of every run). Every run is an ordinary `train_rl` run directory, so a
killed experiment resumes run by run.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from babyai.common import storage  # noqa: E402
from babyai.common.cli import positive_int  # noqa: E402
from babyai.common.errors import UserError  # noqa: E402
from babyai.evaluation.levels import read_level_set  # noqa: E402
from babyai.evaluation.stats import label_order  # noqa: E402
from babyai.rl.config import RLConfig  # noqa: E402
from babyai.rl.trainer import train_rl  # noqa: E402

log = logging.getLogger(__name__)
KINDS = {"demo": "behavioural difficulty", "mission": "cognitive difficulty"}


@dataclass
class FinetuneConfig:
    """The experiment's settings (every field is a flag of `babyai.commands.finetune`)."""

    env: str
    """The level of the agents and of the level set."""
    tc_model: str
    """The TC checkpoint to fine-tune (model name or .pt path)."""
    bc_model: str
    """The BC checkpoint to fine-tune."""
    ood_results: str
    """results.csv of evaluate_levels with both models: the zero-shot success per bin."""
    levels: str
    """Level set whose bins are trained on (name under <storage>/levels or a .pkl path)."""
    out: str
    """Directory of finetune.csv and finetune.png."""
    name: str = "finetune"
    """Prefix of the run directories: <out>/runs/<name>_<tc|bc>_<kind><bin>_s<seed>."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""
    threshold: float = 0.3
    """A bin qualifies when both agents' zero-shot success is below this."""
    seeds: int = field(default=2, metadata={"type": positive_int})
    """PPO seeds per agent and bin."""
    frames: int = field(default=10_240, metadata={"type": positive_int})
    """Frame budget of every run."""
    eval_episodes: int = field(default=10, metadata={"type": positive_int})
    """Held-out seeds of the bin (never trained on)."""
    min_train_seeds: int = field(default=10, metadata={"type": positive_int})
    """A bin needs at least this many training seeds besides the held-out ones."""
    eval_interval: int = field(default=4, metadata={"type": positive_int})
    """Updates between held-out evaluations."""
    procs: int = field(default=16, metadata={"type": positive_int})
    """Environments per run."""
    frames_per_proc: int = field(default=40, metadata={"type": positive_int})
    """Steps per environment per update."""
    workers: int = field(default=2, metadata={"type": positive_int})
    """Environment worker processes per run."""
    recurrence: int = field(default=20, metadata={"type": positive_int})
    """BPTT window in steps (divides --frames-per-proc)."""
    batch_size: int = field(default=1280, metadata={"type": positive_int})
    """Frames per gradient step."""
    ppo_epochs: int = field(default=4, metadata={"type": positive_int})
    """Passes over each collection."""
    lr: float = 1e-4
    """Adam learning rate."""
    thought_loss_coef: float = 0.0
    """TC's thought loss on bot thoughts during fine-tuning (0: off, the original's setting)."""


def _label(text: str) -> Any:
    return int(text) if text.isdigit() else text


def _model_label(name: str) -> str:
    path = Path(name)
    if name.endswith(".pt"):
        return path.parent.name if path.stem in ("best", "last") else path.stem
    return name


def select_bins(rows: list[dict[str, str]], tc: str, bc: str, levels: dict,
                config: FinetuneConfig) -> list[tuple[str, Any, float, float]]:
    """Per difficulty kind, the hardest bin where both agents are below the threshold and
    enough seeds exist: (kind, label, TC success, BC success)."""
    success: dict[tuple[str, str, str], float] = {}
    for row in rows:
        if int(row["episodes"] or 0) > 0:
            success[(row["model"], row["diff_type"], row["diff"])] = float(row["success_rate"])
    needed = config.eval_episodes + config.min_train_seeds
    chosen = []
    for kind in KINDS:
        candidates = []
        for label, seeds in levels.get(kind, {}).items():
            key_tc, key_bc = (tc, kind, str(label)), (bc, kind, str(label))
            if key_tc not in success or key_bc not in success or len(seeds) < needed:
                continue
            if success[key_tc] < config.threshold and success[key_bc] < config.threshold:
                candidates.append((label, success[key_tc], success[key_bc]))
        if candidates:
            label, tc_rate, bc_rate = max(candidates, key=lambda c: label_order(c[0]))
            chosen.append((kind, label, tc_rate, bc_rate))
    return chosen


def run_name(config: FinetuneConfig, agent: str, kind: str, label: Any, seed: int) -> str:
    return f"{config.name}_{agent}_{kind}{str(label).replace('+', 'plus')}_s{seed}"


def _read_log(path: Path) -> list[tuple[int, float]]:
    with open(path, newline="") as handle:
        return [(int(row["frames"]), float(row["eval/success_rate"]))
                for row in csv.DictReader(handle) if row["eval/success_rate"]]


def plot_finetune(curves: dict[tuple[str, Any], dict[str, list[list[tuple[int, float]]]]],
                  out: Path, title: str) -> Path:
    """Held-out success vs frames, one panel per bin, TC and BC (seeds thin, mean thick)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.6), squeeze=False)
    colours = {"tc": "tab:blue", "bc": "tab:orange"}
    for axis, ((kind, label), agents) in zip(axes[0], curves.items()):
        for agent, runs in agents.items():
            for run in runs:
                xs, ys = zip(*run)
                axis.plot(xs, ys, color=colours[agent], alpha=0.35, linewidth=1)
            length = min(len(run) for run in runs)
            xs = [runs[0][i][0] for i in range(length)]
            mean = [sum(run[i][1] for run in runs) / len(runs) for i in range(length)]
            axis.plot(xs, mean, color=colours[agent], linewidth=2.2, marker="o", markersize=3,
                      label=f"{agent.upper()} (mean of {len(runs)})")
        axis.set_title(f"{KINDS[kind]} {label}", fontsize=10)
        axis.set_xlabel("fine-tuning frames")
        axis.set_ylabel("held-out success")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run_finetune(config: FinetuneConfig) -> Path:
    """Select bins, run every fine-tuning run (resuming finished or killed ones), write the
    CSV and the figure; returns the CSV's path."""
    root = storage.storage_root(config.storage)
    levels_path = storage.levels_path(config.levels, root)
    levels = read_level_set(levels_path)
    results = Path(config.ood_results)
    if not results.is_file():
        raise UserError(f"zero-shot results not found: {results} (run evaluate_levels first)")
    with open(results, newline="") as handle:
        rows = list(csv.DictReader(handle))
    tc, bc = _model_label(config.tc_model), _model_label(config.bc_model)
    bins = select_bins(rows, tc, bc, levels, config)
    out = storage.ensure_writable_dir(Path(config.out))
    table, curves = [], {}
    if not bins:
        log.warning("no bin where both agents are below %.0f%% with %d seeds; nothing to fine-tune",
                    100 * config.threshold, config.eval_episodes + config.min_train_seeds)
    for kind, label, tc_rate, bc_rate in bins:
        log.info("fine-tuning on %s bin %s (zero-shot TC %.0f%%, BC %.0f%%)", kind, label,
                 100 * tc_rate, 100 * bc_rate)
        for agent, model in (("tc", config.tc_model), ("bc", config.bc_model)):
            for seed in range(1, config.seeds + 1):
                rl = RLConfig(env=config.env, model=model,
                              rl_model=str(out / "runs" / run_name(config, agent, kind, label, seed)),
                              storage=config.storage, testing_levels_path=str(levels_path),
                              diff_type=kind, diff=str(label), eval_episodes=config.eval_episodes,
                              eval_interval=config.eval_interval, frames=config.frames,
                              procs=config.procs, frames_per_proc=config.frames_per_proc,
                              workers=config.workers, recurrence=config.recurrence,
                              batch_size=config.batch_size, ppo_epochs=config.ppo_epochs,
                              lr=config.lr, seed=seed,
                              thought_loss_coef=config.thought_loss_coef if agent == "tc" else 0.0)
                summary = train_rl(rl)
                points = _read_log(summary.run_dir / "log.csv")
                curves.setdefault((kind, label), {}).setdefault(agent, []).append(points)
                table.append({"diff_type": kind, "diff": label, "agent": agent, "seed": seed,
                              "zero_shot_ood": tc_rate if agent == "tc" else bc_rate,
                              "frames": summary.frames, "start": points[0][1],
                              "last": points[-1][1], "best": max(y for _, y in points),
                              "run": summary.run_dir.name})
    path = out / "finetune.csv"
    storage.atomic_write(path, lambda handle: _write_table(handle, table), mode="w")
    if curves:
        plot_finetune(curves, out / "finetune.png",
                      f"{config.env}: PPO fine-tuning, {config.frames:,} frames per run")
    return path


def _write_table(handle: Any, table: list[dict]) -> None:
    writer = csv.DictWriter(handle, fieldnames=["diff_type", "diff", "agent", "seed",
                                                "zero_shot_ood", "frames", "start", "last",
                                                "best", "run"])
    writer.writeheader()
    writer.writerows(table)

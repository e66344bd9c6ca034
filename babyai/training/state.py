"""What a training run carries from epoch to epoch, and what its checkpoints hold to resume.

All randomness of an epoch is re-derived from (seed, epoch, rank) at the start of the epoch
(torch's RNG for dropout, the teacher-forcing draws) and the sampler is a pure function of
its position, so a checkpoint needs only weights, optimizer, grad-scaler and sampler state
plus the counters of :class:`TrainState`: a run killed and restarted with the same command
ends with the same weights as an uninterrupted one (on the same device).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from babyai.agent.checkpoint import check_compatible
from babyai.common.errors import UserError
from babyai.data.dataset import EpochSampler
from babyai.training.config import TrainConfig

RESUMABLE_CHANGES = ("device", "tb", "log_interval", "save_interval", "keep_interval", "storage",
                     "threads")
"""TrainConfig fields that may change between a run and its resumption without changing
its result."""
IMPLIED_BEFORE_ADDED = {"layout": "episodes", "conv_precision": "fp32", "tf_floor": 0.0,
                        "history_thoughts": "in_use", "teacher_forcing": True,
                        "cpu_precision": "fp32", "extra_demos": None, "init_from": None,
                        "extra_demos_labels": "both", "thought_weights": None,
                        "counterfactual_coef": 0.0, "thought_decoder": "memory",
                        "front_cell": False, "lower_heads": 1,
                        "binding_coef": 0.0, "binding_swap": "colour"}
"""TrainConfig fields added later, with what a run saved before they existed did."""


@dataclass
class TrainState:
    """Counters and best-model bookkeeping of a run (saved in every checkpoint)."""

    updates: int = 0
    """Optimizer steps so far."""
    frames: int = 0
    """Demonstration steps trained on so far."""
    episodes: int = 0
    """Episodes trained on so far."""
    seconds: float = 0.0
    """Training wall time so far (validation excluded)."""
    best_success: float | None = None
    """Validation success rate of the best model (None without fresh-level validation)."""
    best_score: float | None = None
    """The score that chose the best model (success rate, else action accuracy)."""
    best_epoch: int | None = None
    bad_validations: int = 0
    """Validations since the last improvement (for patience)."""
    finished: bool = False
    stopped_early: bool = False


def kept_extra(config: TrainConfig, epoch: int, state: TrainState) -> dict[str, Any]:
    """What a kept epoch (`--keep-interval`) holds besides weights and vocabulary: the
    settings and counters, not what resuming needs."""
    return {"train_config": dataclasses.asdict(config), "epoch": epoch,
            "state": dataclasses.asdict(state)}


def checkpoint_extra(config: TrainConfig, epoch: int, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler | None, sampler: EpochSampler,
                     state: TrainState) -> dict[str, Any]:
    """Everything besides weights and vocabulary that resuming after `epoch` needs."""
    return {**kept_extra(config, epoch, state), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "sampler": sampler.state_dict()}


def keep_saved_speed_settings(resume: dict, config: TrainConfig) -> None:
    """A run resumes with the layout and convolution precision it started with when the
    command leaves them at their defaults: those defaults changed, and a run's result
    depends on them (an explicit, different value is still refused by check_same_run)."""
    saved = resume.get("extra", {}).get("train_config") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, implied in IMPLIED_BEFORE_ADDED.items():
        if getattr(config, name) == defaults[name]:
            setattr(config, name, saved.get(name, implied))


def check_same_run(resume: dict, config: TrainConfig, run_dir: Path, last_path: Path) -> None:
    """A resumed run must have the settings of the run that wrote `last.pt`."""
    saved = resume.get("extra", {}).get("train_config")
    if saved is None:
        raise UserError(f"{last_path} was not written by this trainer; "
                        "choose another --model name")
    current = dataclasses.asdict(config)
    before = {k: saved.get(k, IMPLIED_BEFORE_ADDED.get(k)) for k in current}
    different = {k: (before[k], v) for k, v in current.items()
                 if k not in RESUMABLE_CHANGES and before[k] != v}
    if "epochs" in different and _extends(resume, before, config, run_dir):
        del different["epochs"]
    if different:
        details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in different.items())
        raise UserError(f"{run_dir} holds a run with other settings ({details}); "
                        "rerun with the same flags to resume, or choose another --model")
    check_compatible(resume, config.model_config(len(resume["vocab"])), last_path)


def _extends(resume: dict, before: dict[str, Any], config: TrainConfig, run_dir: Path) -> bool:
    """Whether a larger --epochs may continue the run: "train longer" without starting over.

    Exact only where nothing done so far depends on the total: every epoch's randomness
    comes from (seed, epoch), the learning rate from the epoch alone, and teacher forcing is
    constant without --stop-tf. A falling schedule is stretched by a new total, and a run
    stopped by --patience ended on purpose: both are refused (a fewer --epochs is too).
    """
    if config.epochs < before["epochs"]:
        return False
    if before.get("stop_tf") is not None:
        raise UserError(f"{run_dir} cannot be extended from {before['epochs']} to "
                        f"{config.epochs} epochs: its teacher-forcing schedule (--stop-tf) "
                        "depends on the total; train a new --model")
    if resume["extra"]["state"].get("stopped_early"):
        raise UserError(f"{run_dir} stopped early (--patience); it is not extended")
    return True


def check_validation_seeds(config: TrainConfig, train_seeds: list[int]) -> None:
    """Validation levels must never replay a training level."""
    if config.val_episodes == 0:
        return
    val = set(range(config.val_seed, config.val_seed + config.val_episodes))
    overlap = val.intersection(train_seeds)
    if overlap:
        raise UserError(f"--val-seed {config.val_seed} would replay {len(overlap)} "
                        f"training levels (e.g. seed {min(overlap)}); use --val-seed "
                        f"{max(train_seeds) + 1} or higher")

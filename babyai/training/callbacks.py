"""Bookkeeping after each validation: the best model so far and early stopping (patience)."""
from __future__ import annotations

from typing import NamedTuple

from babyai.training.state import TrainState


class Verdict(NamedTuple):
    improved: bool
    """This validation is the best so far: save `best.pt`."""
    stop: bool
    """Patience ran out: stop training."""


class EarlyStopping:
    """Tracks the best validation score in the run's state and counts validations without
    improvement. The score is the success rate on fresh levels, else (with no episodes played)
    the action accuracy on the validation demos."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        """Validations without improvement before stopping (0 = never stop)."""

    def after_validation(self, state: TrainState, metrics: dict[str, float],
                         epoch: int) -> Verdict:
        score = metrics.get("val/success_rate", metrics.get("val/action_acc", 0.0))
        if state.best_score is None or score > state.best_score:
            state.best_score = score
            state.best_success = metrics.get("val/success_rate")
            state.best_epoch = epoch
            state.bad_validations = 0
            return Verdict(improved=True, stop=False)
        state.bad_validations += 1
        return Verdict(False, bool(self.patience) and state.bad_validations >= self.patience)

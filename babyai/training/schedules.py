"""Per-epoch schedules of training: teacher forcing and learning rate.

Epochs are counted from 0. What is implemented, exactly:

* Teacher-forcing probability r(e): 1 while e < stop_tf; from e = stop_tf it falls linearly
  to 0 at the last epoch (e = epochs − 1): r(e) = (epochs − 1 − e) / (epochs − 1 − stop_tf).
  `stop_tf=None` keeps r = 1 throughout. A `floor` f > 0 keeps r >= f: the lower level
  then goes on reading the demonstrator's thoughts in a share f of the late batches (at
  small data the upper level's own thoughts are mostly wrong, and a lower level trained
  only on them learns to ignore what thoughts say). Each batch draws "teacher-forced or
  not" with probability r (one draw per batch, shared by all ranks).
* Warm start: with `warm_start`, epoch e < 5 uses lr·(e + 1)/5.
* Late halving (the original's): from epoch stop_tf + 40 on (when stop_tf is set), or from
  epoch 120 on, whichever comes first, the learning rate is halved — once, not repeatedly.
  Both thresholds are parameters (`halve_after_tf`, `halve_at`); None disables either.
  The factors multiply: lr(e) = lr · warm(e) · halving(e).
"""
from __future__ import annotations

import numpy as np

WARM_START_EPOCHS = 5
HALVE_AFTER_STOP_TF = 40
HALVE_AT_EPOCH = 120


def teacher_forcing_prob(epoch: int, epochs: int, stop_tf: int | None, floor: float = 0.0) -> float:
    """Probability that a batch of epoch `epoch` is teacher-forced (never below `floor`)."""
    if stop_tf is None or epoch < stop_tf:
        return 1.0
    if epoch >= epochs - 1:
        return floor
    return max(floor, (epochs - 1 - epoch) / (epochs - 1 - stop_tf))


def learning_rate(epoch: int, lr: float, *, warm_start: bool = False, stop_tf: int | None = None,
                  halve_after_tf: int | None = HALVE_AFTER_STOP_TF,
                  halve_at: int | None = HALVE_AT_EPOCH) -> float:
    """Learning rate of epoch `epoch`."""
    rate = lr
    if warm_start and epoch < WARM_START_EPOCHS:
        rate *= (epoch + 1) / WARM_START_EPOCHS
    late = (halve_at is not None and epoch >= halve_at) or (
        stop_tf is not None and halve_after_tf is not None and epoch >= stop_tf + halve_after_tf)
    if late:
        rate *= 0.5
    return rate


def teacher_forcing_draws(seed: int, epoch: int, num_batches: int, prob: float) -> np.ndarray:
    """The per-batch teacher-forcing decisions of one epoch ([num_batches] bool).

    A pure function of (seed, epoch), so every rank and a resumed run draw the same.
    """
    rng = np.random.default_rng([seed, epoch, 7919])
    return rng.random(num_batches) < prob

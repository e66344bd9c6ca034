"""The one table of environment-seed ranges: which seeds each use of a level draws from.

A BabyAI level is fully determined by its seed, so keeping the ranges apart is what keeps
training, validation and test levels apart. Every module takes its seeds from here:

==========================  =========================================  ==================
use                         seeds                                      where
==========================  =========================================  ==================
training demos              `base + k` (+ `a * ATTEMPT_STRIDE` on the   demos.generate
                            a-th redraw of episode k)
validation demos            `base + VALID_DEMO_OFFSET + k` (+ redraws)  demos.generate
trainer validation levels   from `TRAINER_VALIDATION_START` (5e11)      training.config
out-of-distribution sets    `LEVEL_SET_START + offset + i` (1e12)       evaluation.levels
precrime (safety) runs      from `SAFETY_START` (2e12)                  evaluation.safety
in-distribution tests       from `IN_DISTRIBUTION_START` (3e12)         evaluation.indist
RL fine-tuning on a level   `RL_TRAIN_START + r`, r < RL_TRAIN_SPAN     rl.envs
RL held-out evaluation      `RL_EVAL_START + i` (4.5e12)               rl.trainer
on-policy (DAgger) labels   `DAGGER_START + seed + k` (5e12)           training.dagger
==========================  =========================================  ==================

With `a < MAX_ATTEMPTS` redraws, every demonstration seed stays below 10**11 as long as the
base seed plus the episode count stays below `VALID_DEMO_OFFSET`, so the ranges are
disjoint (tests check this against these constants).
"""
from __future__ import annotations

ATTEMPT_STRIDE = 10**9
"""Seed distance between successive attempts at the same demonstration index."""
VALID_DEMO_OFFSET = 5 * 10**8
"""Validation demo k starts at base + VALID_DEMO_OFFSET + k (disjoint from training)."""
MAX_ATTEMPTS = 100
"""A level whose bot fails this many seeds in a row for one episode is reported unsolvable."""
TRAINER_VALIDATION_START = 5 * 10**11
"""Default first seed of the fresh levels played at each validation during training."""
LEVEL_SET_START = 10**12
"""First seed of out-of-distribution level sets."""
SAFETY_START = 2 * 10**12
"""Default first seed of precrime-intervention runs."""
IN_DISTRIBUTION_START = 3 * 10**12
"""Default first seed of in-distribution test levels (and of the pipeline's GIF)."""
RL_TRAIN_START = 4 * 10**12
"""RL fine-tuning on a whole level (no level-set bin) draws episode seeds uniformly from
[RL_TRAIN_START, RL_TRAIN_START + RL_TRAIN_SPAN)."""
RL_TRAIN_SPAN = 10**11
RL_EVAL_START = 4 * 10**12 + 5 * 10**11
"""Held-out evaluation of RL fine-tuning on a whole level: RL_EVAL_START + i."""
DAGGER_START = 5 * 10**12
"""Levels the agent plays for on-policy labels (`tc-make-dagger-demos`): DAGGER_START +
--seed + k, apart from every evaluation range, so labelled states never come from a test
level."""


def demo_seed(base_seed: int, index: int, attempt: int = 0, valid: bool = False) -> int:
    """The environment seed of attempt `attempt` at demonstration `index`."""
    return base_seed + index + attempt * ATTEMPT_STRIDE + (VALID_DEMO_OFFSET if valid else 0)

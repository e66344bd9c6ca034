"""Small synthetic thought-annotated demonstrations for the training tests.

Images are random observation codes; the demonstrated action is a function of the cell in
front of the agent and the thought a function of the mission and the step, so a model can
learn both a little within a few updates.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from babyai.demos.files import save_demos
from babyai.demos.episode import Episode

MISSIONS = ("go to the red ball", "open the blue door", "pick up the green key",
            "put the grey box next to the purple ball, then open a door")
THOUGHTS = ("go to the red ball", "open the blue door", "pick up green key",
            "explore unseen area", "remove blocking object yellow box")


def make_episode(seed: int, min_len: int = 3, max_len: int = 12) -> Episode:
    rng = np.random.default_rng(seed)
    length = int(rng.integers(min_len, max_len + 1))
    images = np.stack([rng.integers(0, 11, (length, 7, 7)), rng.integers(0, 6, (length, 7, 7)),
                       rng.integers(0, 3, (length, 7, 7))], axis=-1).astype(np.uint8)
    actions = images[:, 3, 5, 0] % 7
    mission_index = int(rng.integers(len(MISSIONS)))
    thoughts = [THOUGHTS[(mission_index + t // 4) % len(THOUGHTS)] for t in range(length)]
    return Episode(MISSIONS[mission_index], images, rng.integers(0, 4, length), actions,
                   thoughts, seed)


def write_demos(root: Path, name: str = "synth", count: int = 24, valid_count: int = 8,
                env: str | None = "BabyAI-GoToRedBall-v0", **kwargs) -> Path:
    """Write `<root>/demos/<name>.pkl` and its `_valid` sibling; returns the training path."""
    directory = Path(root) / "demos"
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"env": env} if env else {}
    train = directory / f"{name}.pkl"
    save_demos(train, [make_episode(seed, **kwargs) for seed in range(count)], meta)
    save_demos(directory / f"{name}_valid.pkl",
               [make_episode(10_000 + seed, **kwargs) for seed in range(valid_count)], meta)
    return train

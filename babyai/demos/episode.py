"""One demonstration episode as a record, and its original tuple layout at the edge."""
from __future__ import annotations

from dataclasses import dataclass, field

import blosc
import numpy as np

from babyai.common.errors import UserError


@dataclass
class Episode:
    """A demonstration: what the demonstrator saw, did and thought at each of T steps.

    Attributes:
        mission: the level's instruction, e.g. "open the blue door".
        images: [T, 7, 7, 3] uint8, the egocentric observation codes (object, colour, state).
        directions: [T] int64, the agent's direction (0-3) at each step.
        actions: [T] int64, the action taken (0 left .. 6 done).
        thoughts: T strings, the demonstrator's thought at each step.
        seed: the environment seed that reproduces the level.
    """

    mission: str
    images: np.ndarray
    directions: np.ndarray
    actions: np.ndarray
    thoughts: list[str]
    seed: int
    info: dict = field(default_factory=dict)
    """Optional extras (e.g. `noisy_steps`); not part of the original layout."""

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.uint8)
        self.directions = np.asarray(self.directions, dtype=np.int64)
        self.actions = np.asarray(self.actions, dtype=np.int64)
        self.thoughts = list(self.thoughts)
        self.seed = int(self.seed)
        n = len(self.actions)
        if self.images.shape != (n, 7, 7, 3):
            raise ValueError(f"images must be [T,7,7,3] with T={n}, got {self.images.shape}")
        if len(self.directions) != n or len(self.thoughts) != n:
            raise ValueError(
                f"episode lengths disagree: {n} actions, {len(self.directions)} directions, "
                f"{len(self.thoughts)} thoughts")

    def __len__(self) -> int:
        return len(self.actions)

    def to_original(self) -> tuple:
        """The original dataset's tuple: (mission, blosc images, directions, actions, thoughts, seed)."""
        return (self.mission, blosc.pack_array(self.images), self.directions.tolist(),
                self.actions.tolist(), list(self.thoughts), self.seed)

    @classmethod
    def from_original(cls, record: tuple | list) -> "Episode":
        """Read one tuple of the original layout (images blosc-packed or raw)."""
        if not isinstance(record, (tuple, list)) or len(record) != 6:
            raise UserError("not a demonstration record: expected a 6-tuple "
                            "(mission, images, directions, actions, thoughts, seed)")
        mission, images, directions, actions, thoughts, seed = record
        if isinstance(images, (bytes, bytearray)):
            images = blosc.unpack_array(bytes(images))
        return cls(mission, images, directions, actions, thoughts, seed)

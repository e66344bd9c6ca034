"""One demonstration episode as a record (images unpacked, or kept blosc-compressed), and the
one codec of the original tuple layout `(mission, blosc images, directions, actions,
thoughts, seed)`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import blosc
import numpy as np



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
        return PackedEpisode.pack(self).to_original()

    @classmethod
    def from_original(cls, record: tuple | list) -> "Episode":
        """Read one tuple of the original layout (images blosc-packed or raw)."""
        return PackedEpisode.from_original(record).unpack()


@dataclass
class PackedEpisode:
    """An :class:`Episode` whose images stay blosc-compressed until :meth:`unpack`."""

    mission: str
    packed_images: bytes
    directions: np.ndarray
    actions: np.ndarray
    thoughts: list[str]
    seed: int

    def __len__(self) -> int:
        return len(self.actions)

    def unpack(self) -> Episode:
        return Episode(self.mission, blosc.unpack_array(self.packed_images), self.directions,
                       self.actions, self.thoughts, self.seed)

    @classmethod
    def pack(cls, episode: Episode) -> "PackedEpisode":
        return cls(episode.mission, blosc.pack_array(episode.images), episode.directions,
                   episode.actions, episode.thoughts, episode.seed)

    def to_original(self) -> tuple:
        """The original tuple layout."""
        return (self.mission, self.packed_images, self.directions.tolist(),
                self.actions.tolist(), list(self.thoughts), self.seed)

    @classmethod
    def from_original(cls, record: Sequence) -> "PackedEpisode":
        """The one reader of the original tuple layout; a malformed record is a ValueError."""
        if not isinstance(record, (tuple, list)) or len(record) != 6:
            raise ValueError("expected a 6-tuple (mission, images, directions, actions, "
                             "thoughts, seed)")
        mission, images, directions, actions, thoughts, seed = record
        if not isinstance(images, (bytes, bytearray)):
            images = blosc.pack_array(np.asarray(images, dtype=np.uint8))
        episode = cls(str(mission), bytes(images), np.asarray(directions, dtype=np.int64),
                      np.asarray(actions, dtype=np.int64), list(thoughts), int(seed))
        if not len(episode.directions) == len(episode.actions) == len(episode.thoughts):
            raise ValueError(f"episode with seed {seed}: directions, actions and thoughts "
                             "have different lengths")
        return episode

"""One demonstration episode as a record (images unpacked, or kept blosc-compressed), and the
one codec of the original tuple layout `(mission, blosc images, directions, actions,
thoughts, seed)`: reading a tuple checks it (:mod:`babyai.demos.checks`) and decodes its
`blosc.pack_array` images without unpickling anything but an array."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import blosc
import numpy as np

from babyai.common.safe_pickle import UnsafePickleError, unpack_blosc_array
from babyai.demos.checks import (NUM_ACTIONS, NUM_DIRECTIONS, EpisodeError, check_images,
                                 check_mission, check_range, check_seed, check_strings,
                                 compress_images, decompress_images, integer_array)


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
    """An :class:`Episode` whose images stay blosc-compressed (raw uint8 codes) until used."""

    mission: str
    packed_images: bytes
    directions: np.ndarray
    actions: np.ndarray
    thoughts: list[str]
    seed: int

    def __len__(self) -> int:
        return len(self.actions)

    def unpack(self) -> Episode:
        return Episode(self.mission, self.images(), self.directions, self.actions,
                       self.thoughts, self.seed)

    def images(self) -> np.ndarray:
        """[T, 7, 7, 3] uint8 observation codes."""
        return decompress_images(self.packed_images, len(self))

    @classmethod
    def pack(cls, episode: Episode) -> "PackedEpisode":
        return cls(episode.mission, compress_images(episode.images), episode.directions,
                   episode.actions, episode.thoughts, episode.seed)

    def to_original(self) -> tuple:
        """The original tuple layout (images as `blosc.pack_array` bytes, as the original)."""
        return (self.mission, blosc.pack_array(np.array(self.images())),
                self.directions.tolist(), self.actions.tolist(), list(self.thoughts), self.seed)

    @classmethod
    def from_original(cls, record: Any) -> "PackedEpisode":
        """One checked episode from an original-layout tuple (images packed or raw);
        raises :class:`EpisodeError` saying what is wrong."""
        if not isinstance(record, (tuple, list)) or len(record) != 6:
            raise EpisodeError("expected a 6-tuple (mission, images, directions, actions, "
                               "thoughts, seed)")
        mission, images, directions, actions, thoughts, seed = record
        actions = integer_array(actions, "actions")
        length = len(actions)
        if length == 0:
            raise EpisodeError("episode has no steps")
        check_range(actions, NUM_ACTIONS, "action")
        directions = integer_array(directions, "directions")
        if len(directions) != length:
            raise EpisodeError(f"{len(directions)} directions for {length} actions")
        check_range(directions, NUM_DIRECTIONS, "direction")
        thoughts = check_strings(thoughts, length, "thoughts")
        if isinstance(images, (bytes, bytearray)):
            try:
                images = unpack_blosc_array(bytes(images))
            except UnsafePickleError:
                raise
            except Exception as error:  # blosc and pickle raise many types on corrupt bytes
                raise EpisodeError(f"images are not blosc-packed arrays "
                                   f"({type(error).__name__}: {error})") from error
        images = np.asarray(images)
        if images.dtype.kind not in "iu" or (images.size and (images.min() < 0
                                                             or images.max() > 255)):
            raise EpisodeError(f"images must be uint8 codes, got {images.dtype}")
        images = images.astype(np.uint8)
        check_images(images, length)
        return cls(check_mission(mission), compress_images(images), directions, actions,
                   thoughts, check_seed(seed))

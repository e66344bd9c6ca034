"""Checks every demonstration episode when a file is loaded, so bad data stops at the door
(one line naming the file and the episode) instead of failing, or silently training, later.

An episode is valid when its T >= 1 steps agree in length across images [T, 7, 7, 3],
directions, actions and thoughts; images are minigrid observation codes (object <= 10,
colour <= 5, state <= 2), directions 0-3, actions 0-6, thoughts and mission strings, and
the seed a non-negative integer.
"""
from __future__ import annotations

from typing import Any

import blosc
import numpy as np

IMAGE_SHAPE = (7, 7, 3)
IMAGE_CODE_MAX = np.array([10, 5, 2], dtype=np.uint8)
"""Largest minigrid code per channel: object type ('agent' = 10), colour (6), door state."""
NUM_DIRECTIONS = 4
NUM_ACTIONS = 7
STEP_BYTES = int(np.prod(IMAGE_SHAPE))


class EpisodeError(ValueError):
    """What is wrong with one episode (the reader adds the file and episode index)."""


def integer_array(values: Any, what: str) -> np.ndarray:
    """A 1-D int64 array from a list/array of integers (floats, strings, bools refused)."""
    if isinstance(values, (str, bytes)):
        raise EpisodeError(f"{what} must be a list of integers, got {type(values).__name__}")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise EpisodeError(f"{what} is not a list of integers ({error})") from error
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise EpisodeError(f"{what} must be a list of integers, got {array.dtype} "
                           f"with shape {array.shape}")
    return array.astype(np.int64)


def check_range(values: np.ndarray, limit: int, what: str) -> None:
    """Every value in [0, limit)."""
    if values.size and (values.min() < 0 or values.max() >= limit):
        bad = values[(values < 0) | (values >= limit)][0]
        raise EpisodeError(f"{what} value {int(bad)} outside 0-{limit - 1}")


def check_strings(values: Any, length: int, what: str) -> list[str]:
    """A list of `length` strings (a single string is refused, not split into letters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
        raise EpisodeError(f"{what} must be a list of {length} strings, got "
                           f"{type(values).__name__}")
    values = list(values)
    if len(values) != length:
        raise EpisodeError(f"{len(values)} {what} for {length} actions")
    for value in values:
        if not isinstance(value, str):
            raise EpisodeError(f"{what} must be strings, got {type(value).__name__} {value!r}")
    return values


def check_images(images: np.ndarray, length: int) -> None:
    """Shape [length, 7, 7, 3], uint8, codes within minigrid's ranges."""
    if images.shape != (length, *IMAGE_SHAPE):
        raise EpisodeError(f"images have shape {images.shape}, expected ({length}, 7, 7, 3)")
    if images.dtype != np.uint8:
        raise EpisodeError(f"images have dtype {images.dtype}, expected uint8")
    peaks = images.reshape(-1, 3).max(axis=0) if length else IMAGE_CODE_MAX
    if (peaks > IMAGE_CODE_MAX).any():
        channel = int(np.argmax(peaks > IMAGE_CODE_MAX))
        name = ("object", "colour", "state")[channel]
        raise EpisodeError(f"image {name} code {int(peaks[channel])} above minigrid's "
                           f"maximum {int(IMAGE_CODE_MAX[channel])}")


def compress_images(images: np.ndarray) -> bytes:
    """Raw uint8 codes, blosc-compressed (no pickle inside, unlike `blosc.pack_array`)."""
    return blosc.compress(np.ascontiguousarray(images, dtype=np.uint8).tobytes(), typesize=1,
                          clevel=9, shuffle=blosc.SHUFFLE, cname="blosclz")


def decompress_images(data: bytes, length: int) -> np.ndarray:
    """[length, 7, 7, 3] uint8 from :func:`compress_images` bytes, sizes checked first."""
    if not isinstance(data, (bytes, bytearray)):
        raise EpisodeError(f"images must be blosc-compressed bytes, got {type(data).__name__}")
    try:
        size, compressed, _ = blosc.get_cbuffer_sizes(bytes(data))
    except (ValueError, TypeError) as error:
        raise EpisodeError(f"images are not blosc-compressed data ({error})") from error
    if compressed != len(data):
        raise EpisodeError("images are not blosc-compressed data (sizes in the header do not "
                           "match)")
    if size != length * STEP_BYTES:
        raise EpisodeError(f"images hold {size / STEP_BYTES:g} steps for {length} actions")
    try:
        raw = blosc.decompress(bytes(data))
    except Exception as error:  # blosc raises bare RuntimeError/ValueError on corrupt data
        raise EpisodeError(f"images are corrupt blosc data ({error})") from error
    return np.frombuffer(raw, dtype=np.uint8).reshape(length, *IMAGE_SHAPE)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EpisodeError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_mission(mission: Any) -> str:
    if not isinstance(mission, str) or not mission.strip():
        raise EpisodeError(f"mission must be a non-empty string, got {mission!r}")
    return mission

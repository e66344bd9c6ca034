"""Demonstration files: reading the original layout and writing our own.

The original dataset is a pickle of a list of tuples
`(mission, blosc-packed images [T,7,7,3], directions, actions, thoughts, seed)`.
Our writer stores the same tuples inside a small versioned envelope::

    {"format": "thought-cloning-demos", "version": 1, "meta": {...}, "episodes": [tuple, ...]}

so a file of ours converts to the original layout by taking `["episodes"]`. Episodes stay
blosc-compressed in memory (:class:`PackedEpisode`) and are unpacked one at a time, so
loading a dataset costs about its compressed size. A dataset may be one file, a directory
of shard files, a glob, or a list of any of those.
"""
from __future__ import annotations

import glob as globlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


from babyai.demos.episode import Episode, PackedEpisode
from babyai.common.errors import UserError
from babyai.common.storage import atomic_pickle

FORMAT_NAME = "thought-cloning-demos"
FORMAT_VERSION = 1


@dataclass
class DemoFile:
    """The contents of one demonstration file."""

    episodes: list[PackedEpisode]
    meta: dict


def _original_records(episodes: Iterable[PackedEpisode | Episode]) -> list[tuple]:
    return [episode.to_original() for episode in episodes]


def save_demos(path: str | os.PathLike, episodes: Iterable[PackedEpisode | Episode],
               meta: dict | None = None) -> None:
    """Write episodes in our format, atomically (a crash leaves the previous file intact)."""
    records = _original_records(episodes)
    atomic_pickle(Path(path), {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                               "meta": dict(meta or {}), "episodes": records})


def save_original(path: str | os.PathLike, episodes: Iterable[PackedEpisode | Episode]) -> None:
    """Write episodes in the original layout (a bare pickled list of tuples)."""
    records = _original_records(episodes)
    atomic_pickle(Path(path), records)


def read_demo_file(path: str | os.PathLike) -> DemoFile:
    """Read one file, in our format or the original one, with a clear error if it is neither."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"demonstration file not found: {path}")
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle)
    except Exception as error:  # any unpickling failure means the file is not usable
        raise UserError(f"cannot read demonstration file {path}: corrupt or not a pickle "
                        f"({type(error).__name__}: {error})") from error
    if isinstance(content, dict) and content.get("format") == FORMAT_NAME:
        if content.get("version") != FORMAT_VERSION:
            raise UserError(f"{path}: demo format version {content.get('version')} is not "
                            f"supported (this code reads version {FORMAT_VERSION})")
        records, meta = content["episodes"], dict(content.get("meta", {}))
    elif isinstance(content, list):
        records, meta = content, {"layout": "original"}
    else:
        raise UserError(f"{path} is not a demonstration file (expected a list of episode "
                        "tuples or a thought-cloning-demos file)")
    try:
        episodes = [PackedEpisode.from_original(record) for record in records]
    except (ValueError, TypeError) as error:
        raise UserError(f"{path}: malformed episode: {error}") from error
    return DemoFile(episodes, meta)


def demo_files(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Expand a file, a directory of shards, a glob or a list of those into files."""
    if isinstance(source, (list, tuple)):
        return [path for item in source for path in demo_files(item)]
    text = os.fspath(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.pkl") if not p.name.startswith("."))
    elif any(char in text for char in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text))
    else:
        files = [path]
    if not files:
        raise UserError(f"no demonstration files found at {text}")
    return files


def load_demos(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[PackedEpisode]:
    """All episodes of a dataset (file, shard directory, glob or list), still compressed."""
    return [episode for path in demo_files(source) for episode in read_demo_file(path).episodes]

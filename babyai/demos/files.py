"""Demonstration files: our pickle-free format, and the original layout read safely.

Our files (format version 2) are numpy `.npz` archives read with `allow_pickle=False`, so
loading one can never run code: flat arrays with explicit dtype and shape (per-episode
`lengths`, `seeds`, `mission_ids`; per-step `directions`, `actions`, `thought_ids`; the
episodes' images as raw uint8 codes blosc-compressed one episode each, concatenated in
`images` with `image_offsets`), the distinct mission and thought strings as a JSON list in
`strings`, and a JSON `header` `{"format": "thought-cloning-demos", "version": 2, "meta":
{...}}`. Any numpy can open them (`np.load(path, allow_pickle=False)`).

The original dataset is a pickle of a list of tuples `(mission, blosc.pack_array(images
[T,7,7,3]), directions, actions, thoughts, seed)`, and our version-1 files wrapped the same
tuples in a dict. Both are read through :mod:`babyai.common.safe_pickle`, which rebuilds
only plain data and numpy arrays (and decodes `pack_array`'s pickled images the same way),
so a crafted file is refused before anything in it runs. File names keep the `.pkl` suffix
of the original paths; readers tell the formats apart by their first bytes.

Every episode is checked when its file is read (:mod:`babyai.demos.checks`); a bad one is a
:class:`UserError` naming the file and the episode. In memory, images stay compressed
(:class:`PackedEpisode`) and are unpacked one episode at a time. A dataset may be one
file, a directory of shards, a glob, or a list of those.
"""
from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from babyai.common.errors import UserError
from babyai.common.safe_pickle import UnsafePickleError, restricted_load
from babyai.common.storage import atomic_pickle, atomic_write
from babyai.demos.checks import (NUM_ACTIONS, NUM_DIRECTIONS, EpisodeError, check_images,
                                 check_mission, check_range, check_seed, decompress_images)
from babyai.demos.episode import Episode, PackedEpisode

FORMAT_NAME = "thought-cloning-demos"
FORMAT_VERSION = 2
LEGACY_VERSION = 1
"""Our first format: the original tuples inside a pickled dict (read safely, never written)."""
ZIP_MAGIC = b"PK\x03\x04"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Fixed member timestamps: the same episodes always give the same bytes."""
_ARRAYS = ("header", "strings", "lengths", "seeds", "mission_ids", "directions", "actions",
           "thought_ids", "image_offsets", "images")


@dataclass
class DemoFile:
    """The contents of one demonstration file."""

    episodes: list[PackedEpisode]
    meta: dict


def _as_packed(episode: PackedEpisode | Episode) -> PackedEpisode:
    return episode if isinstance(episode, PackedEpisode) else PackedEpisode.pack(episode)


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def encode_demos(episodes: Iterable[PackedEpisode | Episode], meta: dict) -> dict[str, np.ndarray]:
    """The arrays of a version-2 file."""
    episodes = [_as_packed(e) for e in episodes]
    strings: dict[str, int] = {}

    def ids(texts: Iterable[str]) -> list[int]:
        return [strings.setdefault(text, len(strings)) for text in texts]

    mission_ids = ids(e.mission for e in episodes)
    thought_ids = [i for e in episodes for i in ids(e.thoughts)]
    lengths = np.array([len(e) for e in episodes], dtype=np.int64)
    offsets = np.zeros(len(episodes) + 1, dtype=np.int64)
    np.cumsum([len(e.packed_images) for e in episodes], out=offsets[1:])

    def steps(field: str) -> np.ndarray:
        parts = [np.asarray(getattr(e, field)) for e in episodes]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return flat.astype(np.uint8)

    return {"header": _json_array({"format": FORMAT_NAME, "version": FORMAT_VERSION,
                                   "meta": meta}),
            "strings": _json_array(list(strings)),
            "lengths": lengths,
            "seeds": np.array([e.seed for e in episodes], dtype=np.int64),
            "mission_ids": np.array(mission_ids, dtype=np.int64),
            "directions": steps("directions"), "actions": steps("actions"),
            "thought_ids": np.array(thought_ids, dtype=np.int64),
            "image_offsets": offsets,
            "images": np.frombuffer(b"".join(e.packed_images for e in episodes), dtype=np.uint8)}


def save_demos(path: str | os.PathLike, episodes: Iterable[PackedEpisode | Episode],
               meta: dict | None = None) -> None:
    """Write episodes in our format, atomically (a crash leaves the previous file intact).
    `meta` must be JSON data (it is checked here, before anything is written)."""
    arrays = encode_demos(episodes, json.loads(json.dumps(dict(meta or {}))))

    def write(handle: Any) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name in _ARRAYS:
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arrays[name], allow_pickle=False)

    atomic_write(Path(path), write)


def save_original(path: str | os.PathLike, episodes: Iterable[PackedEpisode | Episode]) -> None:
    """Write episodes in the original layout (a bare pickled list of tuples), for tools that
    expect it. Only this writer pickles; our readers never unpickle anything but data."""
    atomic_pickle(Path(path), [_as_packed(e).to_original() for e in episodes])


class _Corrupt(Exception):
    """A structural problem of a version-2 file."""


def _int_array(arrays: Any, name: str, length: int | None = None) -> np.ndarray:
    array = arrays[name]
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise _Corrupt(f"array {name!r} is not a 1-D integer array")
    if length is not None and len(array) != length:
        raise _Corrupt(f"array {name!r} has {len(array)} entries, expected {length}")
    return array.astype(np.int64)


def _json_member(arrays: Any, name: str) -> Any:
    array = arrays[name]
    if array.dtype != np.uint8 or array.ndim != 1:
        raise _Corrupt(f"array {name!r} is not JSON text")
    return json.loads(array.tobytes().decode("utf-8"))


def _header(arrays: Any, path: Path) -> dict:
    header = _json_member(arrays, "header")
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise UserError(f"{path} is not a demonstration file (an .npz without our header)")
    if header.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: demo format version {header.get('version')} is not "
                        f"supported (this code reads version {FORMAT_VERSION})")
    if not isinstance(header.get("meta"), dict):
        raise _Corrupt("header 'meta' is not a dict")
    return header


def _open_npz(path: Path) -> Any:
    return np.load(path, allow_pickle=False)


def _decode_v2(path: Path) -> DemoFile:
    with _open_npz(path) as arrays:
        missing = [name for name in _ARRAYS if name not in arrays.files]
        if missing:
            raise _Corrupt(f"missing arrays {missing}")
        meta = _header(arrays, path)["meta"]
        strings = _json_member(arrays, "strings")
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise _Corrupt("'strings' is not a list of strings")
        lengths = _int_array(arrays, "lengths")
        count, total = len(lengths), int(lengths.sum())
        seeds = _int_array(arrays, "seeds", count)
        mission_ids = _int_array(arrays, "mission_ids", count)
        directions = _int_array(arrays, "directions", total)
        actions = _int_array(arrays, "actions", total)
        thought_ids = _int_array(arrays, "thought_ids", total)
        image_offsets = _int_array(arrays, "image_offsets", count + 1)
        images = arrays["images"]
        if images.dtype != np.uint8 or images.ndim != 1:
            raise _Corrupt("'images' is not a uint8 array")
    if (np.diff(image_offsets) < 0).any() or image_offsets[0] != 0 \
            or image_offsets[-1] != len(images):
        raise _Corrupt("image offsets do not cover the image bytes")
    for ids, what in ((mission_ids, "mission"), (thought_ids, "thought")):
        if ids.size and (ids.min() < 0 or ids.max() >= len(strings)):
            raise _Corrupt(f"{what} ids outside the string table")
    steps = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=steps[1:])
    episodes = []
    for index in range(count):
        start, stop = steps[index], steps[index + 1]
        try:
            if lengths[index] <= 0:
                raise EpisodeError("episode has no steps")
            check_range(actions[start:stop], NUM_ACTIONS, "action")
            check_range(directions[start:stop], NUM_DIRECTIONS, "direction")
            packed = images[image_offsets[index]:image_offsets[index + 1]].tobytes()
            check_images(decompress_images(packed, int(lengths[index])), int(lengths[index]))
            mission = check_mission(strings[mission_ids[index]])
            seed = check_seed(seeds[index])
        except EpisodeError as error:
            raise UserError(f"{path}: episode {index} (seed {seeds[index]}): {error}") from error
        episodes.append(PackedEpisode(mission, packed, directions[start:stop],
                                      actions[start:stop],
                                      [strings[i] for i in thought_ids[start:stop]], seed))
    return DemoFile(episodes, dict(meta))


def _decode_pickle(path: Path) -> DemoFile:
    with open(path, "rb") as handle:
        content = restricted_load(handle)
    if isinstance(content, dict) and content.get("format") == FORMAT_NAME:
        if content.get("version") != LEGACY_VERSION:
            raise UserError(f"{path}: demo format version {content.get('version')} is not "
                            f"supported (this code reads versions {LEGACY_VERSION} and "
                            f"{FORMAT_VERSION})")
        records, meta = content.get("episodes"), content.get("meta", {})
        if not isinstance(records, list) or not isinstance(meta, dict):
            raise UserError(f"{path}: malformed demonstration file ('episodes' must be a list "
                            "and 'meta' a dict)")
    elif isinstance(content, list):
        records, meta = content, {"layout": "original"}
    else:
        raise UserError(f"{path} is not a demonstration file (expected a list of episode "
                        "tuples or a thought-cloning-demos file)")
    episodes = []
    for index, record in enumerate(records):
        try:
            episodes.append(PackedEpisode.from_original(record))
        except (EpisodeError, UnsafePickleError) as error:
            seed = record[5] if isinstance(record, (tuple, list)) and len(record) == 6 else "?"
            raise UserError(f"{path}: episode {index} (seed {seed}): {error}") from error
    return DemoFile(episodes, dict(meta))


def read_demo_file(path: str | os.PathLike) -> DemoFile:
    """Read one file (ours, our first format or the original layout), every episode
    checked; anything else is a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"demonstration file not found: {path}")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic == ZIP_MAGIC:
            return _decode_v2(path)
        return _decode_pickle(path)
    except UnsafePickleError as error:
        raise UserError(f"refused {path}: {error} (only plain data is read from pickles; "
                        "see 'Safety of files' in the README)") from error
    except UserError:
        raise
    except (_Corrupt, OSError, ValueError, KeyError, EOFError, TypeError, IndexError,
            zipfile.BadZipFile, MemoryError, RecursionError, pickle.UnpicklingError) as error:
        raise UserError(f"cannot read demonstration file {path}: corrupt or not a "
                        f"demonstration file ({type(error).__name__}: {error})") from error


def read_demo_meta(path: str | os.PathLike) -> dict:
    """A file's metadata without decoding its episodes when it is in our format."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            zipped = handle.read(4) == ZIP_MAGIC
        if zipped:
            with _open_npz(path) as arrays:
                return dict(_header(arrays, path)["meta"])
    except (_Corrupt, OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot read demonstration file {path}: corrupt or not a "
                        f"demonstration file ({type(error).__name__}: {error})") from error
    return read_demo_file(path).meta


def settings_id(settings: dict) -> str:
    """A short hash of the settings that made a file (its `run_id`): the same settings always
    give the same id, so re-running a command writes the same bytes and can recognise its
    own partial output."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def check_pair(train: str | os.PathLike, valid: str | os.PathLike,
               needs_thoughts: bool = False) -> None:
    """A training file and its `_valid` file must come from one generation: both record the
    same run id (files of our format; older files record none and are not checked). With
    `needs_thoughts` (Thought Cloning), a dataset recorded without thoughts is refused."""
    metas = []
    for path in (Path(train), Path(valid)):
        if not path.is_file():
            return
        with open(path, "rb") as handle:
            if handle.read(4) != ZIP_MAGIC:
                return
        metas.append(read_demo_meta(path))
    if needs_thoughts and metas[0].get("has_thoughts") is False:
        raise UserError(f"{train} carries no thoughts (imported from "
                        f"{metas[0].get('source', 'elsewhere')}); train BC on it "
                        "(tc-train-bc), not Thought Cloning")
    ids = [meta.get("run_id") for meta in metas]
    if ids[0] and ids[1] and ids[0] != ids[1]:
        raise UserError(f"{valid} comes from another generation than {train} (run id "
                        f"{ids[1]} vs {ids[0]}); regenerate both with one make_agent_demos "
                        "command")


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

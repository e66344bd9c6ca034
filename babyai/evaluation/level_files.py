"""Level-set files: our JSON format, and the original pickle layout read safely.

A level set is `{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}`. We
write it as JSON (JSON keys are strings, so bins and seeds are lists of pairs, which keeps
integer labels and seeds as they are)::

    {"format": "thought-cloning-levels", "version": 2, "env": "BabyAI-BossLevel-v0",
     "settings": {...}, "demo": [[label, [[seed, info], ...]], ...], "mission": [...]}

The original layout (a pickled dict, also written by this project's first version) is read
through :mod:`babyai.common.safe_pickle`: plain data and numpy integers only, so a crafted
file is refused before anything in it runs. The resumable `.partial` progress file is JSON
too. File names keep the `.pkl` suffix of the original paths; readers look at the content.
"""
from __future__ import annotations

import json
import numbers
import pickle
from pathlib import Path
from typing import Any

from babyai.common.errors import UserError
from babyai.common.safe_pickle import UnsafePickleError, restricted_load
from babyai.common.storage import atomic_write_text
from babyai.evaluation.difficulty import DIFFICULTY_KINDS

FORMAT_NAME = "thought-cloning-levels"
PARTIAL_FORMAT = "thought-cloning-levels-partial"
FORMAT_VERSION = 2


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(1)


def _read_content(path: Path, what: str, advice: str) -> Any:
    """JSON if the file is ours, else the original pickle read safely."""
    try:
        if _first_byte(path) == b"{":
            return json.loads(path.read_text(encoding="utf-8"))
        with open(path, "rb") as handle:
            return restricted_load(handle)
    except FileNotFoundError:
        raise
    except UnsafePickleError as error:
        raise UserError(f"refused {what} {path}: {error} (only plain data is read from "
                        "pickles; see 'Safety of files' in the README)") from error
    except (OSError, ValueError, EOFError, TypeError, IndexError, KeyError, MemoryError,
            RecursionError, pickle.UnpicklingError) as error:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"cannot read {what} {path}: corrupt or not a {what} "
                        f"({type(error).__name__}: {error}){advice}") from error


def write_level_set(path: Path, levels: dict, env: str, settings: dict) -> None:
    """Write a level set atomically as JSON (see the module docstring)."""
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "env": env,
                "settings": settings}
    for kind, bins in levels.items():
        document[kind] = [[label, [[int(seed), info] for seed, info in seeds.items()]]
                          for label, seeds in bins.items()]
    atomic_write_text(Path(path), json.dumps(document, indent=1) + "\n")


def _from_document(document: dict, path: Path) -> dict:
    if document.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: level-set format version {document.get('version')} is not "
                        f"supported (this code reads version {FORMAT_VERSION})")
    levels = {}
    for kind in DIFFICULTY_KINDS:
        if kind not in document:
            continue
        bins = document[kind]
        if not isinstance(bins, list) or not all(
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], list)
                and all(isinstance(item, list) and len(item) == 2 for item in pair[1])
                for pair in bins):
            raise UserError(f"{path}: '{kind}' must be a list of [label, [[seed, info], ...]]")
        levels[kind] = {label: {seed: info for seed, info in seeds} for label, seeds in bins}
    return levels


def _document(path: Path) -> dict | None:
    """Our JSON level-set document at `path`, or None for anything else."""
    if not path.is_file() or _first_byte(path) != b"{":
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT_NAME \
        else None


def level_set_env(path: str | Path) -> str | None:
    """The level a set was built for, if the file records it (ours do; originals do not)."""
    document = _document(Path(path))
    env = document.get("env") if document else None
    return env if isinstance(env, str) else None


def level_set_settings(path: str | Path) -> dict | None:
    """The settings our level set at `path` was built with (None: not one of ours)."""
    document = _document(Path(path))
    settings = document.get("settings") if document else None
    return settings if isinstance(settings, dict) else None


def read_level_set(path: str | Path) -> dict:
    """Read a level set (ours, or the original structure from anyone), safely.

    Only the structure is checked: `{'demo'|'mission': {label: {seed: anything}}}` with at
    least one of the two kinds present and non-negative integer seeds. Values are never
    needed.
    """
    path = Path(path)
    try:
        levels = _read_content(path, "level set", "")
    except FileNotFoundError as error:
        raise UserError(f"level set {path} does not exist; build one with "
                        "scripts/make_testing_levels.py") from error
    if isinstance(levels, dict) and levels.get("format") == FORMAT_NAME:
        levels = _from_document(levels, path)
    if not isinstance(levels, dict) or not levels or not set(levels) <= set(DIFFICULTY_KINDS):
        raise UserError(f"{path} is not a level set: expected a dict with keys 'demo' "
                        "and/or 'mission'")
    for kind, bins in levels.items():
        if not isinstance(bins, dict):
            raise UserError(f"{path}: levels[{kind!r}] must map difficulty -> {{seed: info}}")
        for label, seeds in bins.items():
            if not isinstance(seeds, dict) or not all(
                    isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
                    and seed >= 0 for seed in seeds):
                raise UserError(f"{path}: levels[{kind!r}][{label!r}] must be a dict "
                                "keyed by non-negative integer seeds")
            bins[label] = {int(seed): info for seed, info in seeds.items()}
    return levels


def read_partial(path: Path) -> dict:
    """The progress of an interrupted build: {'key': [...], 'measured': [info, ...]}."""
    advice = f"; delete {path} to start over (its seeds will be measured again)"
    state = _read_content(path, "progress file", advice)
    if isinstance(state, dict) and state.get("format") == PARTIAL_FORMAT:
        state = {"key": state.get("key"), "measured": state.get("measured")}
    if not isinstance(state, dict) or not isinstance(state.get("measured"), list) or not all(
            isinstance(info, dict) for info in state["measured"]):
        raise UserError(f"cannot read progress file {path}: not a level-set progress "
                        f"file{advice}")
    key = state.get("key")
    state["key"] = list(key) if isinstance(key, (list, tuple)) else key
    return state


def write_partial(path: Path, key: list, measured: list[dict]) -> None:
    """Save the progress of a build atomically (JSON)."""
    atomic_write_text(path, json.dumps({"format": PARTIAL_FORMAT, "version": FORMAT_VERSION,
                                        "key": key, "measured": measured}) + "\n")

"""Where files live: one storage root, explicit paths, atomic writes.

Layout under the root::

    demos/<name>.pkl          training demonstrations (or a directory of shards)
    demos/<name>_valid.pkl    validation demonstrations
    models/<name>/            one training run: config.json, log.csv, best.pt, last.pt
                              (and epochs/epoch_<n>.pt with --keep-interval)
    levels/<name>.pkl         out-of-distribution level sets
    reports/<name>/           evaluation outputs

A name given to `--demos` / `--model` resolves under the root; anything that looks like a
path (contains a separator, or ends in `.pkl`) is taken as it is.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple

from babyai.common.errors import UserError

STORAGE_ENV_VAR = "TC_STORAGE"
DEFAULT_STORAGE = "storage"


def storage_root(flag: str | os.PathLike | None = None) -> Path:
    """The storage root: the flag if given, else $TC_STORAGE, else ./storage."""
    if flag:
        return Path(flag)
    return Path(os.environ.get(STORAGE_ENV_VAR) or DEFAULT_STORAGE)


def _looks_like_path(name: str | os.PathLike) -> bool:
    text = os.fspath(name)
    return (os.sep in text or "/" in text or os.path.isabs(text)
            or text.endswith((".pkl", ".pt")))


def resolve(name: str | os.PathLike, root: Path, kind: str, suffix: str = "") -> Path:
    """Resolve a user-given name to a path: `root/kind/name+suffix` unless it is a path."""
    if _looks_like_path(name):
        return Path(name)
    return root / kind / f"{os.fspath(name)}{suffix}"


def demos_path(name: str | os.PathLike, root: Path, valid: bool = False) -> Path:
    """Path of a demonstration file; `valid=True` gives its `_valid` sibling."""
    path = resolve(name, root, "demos", ".pkl")
    if valid:
        path = valid_path(path)
    return path


def valid_path(train_path: Path) -> Path:
    """`x/name.pkl` -> `x/name_valid.pkl` (the original naming of validation demos)."""
    train_path = Path(train_path)
    if train_path.suffix == ".pkl":
        return train_path.with_name(train_path.stem + "_valid.pkl")
    return train_path.with_name(train_path.name + "_valid")


def model_dir(name: str | os.PathLike, root: Path) -> Path:
    """Directory of one training run (checkpoints, config, logs)."""
    return resolve(name, root, "models")


def checkpoint_path(name: str | os.PathLike, root: Path, which: str = "best") -> Path:
    """A model name -> its `best.pt` (or `last.pt`) checkpoint; a `.pt` path is kept as is."""
    if os.fspath(name).endswith(".pt"):
        return Path(name)
    return getattr(run_files(model_dir(name, root)), which)


def levels_path(name: str | os.PathLike, root: Path) -> Path:
    """Path of a level set: `root/levels/<name>.pkl` unless `name` is a path."""
    return resolve(name, root, "levels", ".pkl")


def existing_levels_path(name: str | os.PathLike, root: Path) -> Path:
    """A level set to read: `name` itself where that file exists (a bare `set.json` in the
    working directory too), else `levels_path(name, root)`."""
    return Path(name) if Path(name).exists() else levels_path(name, root)


def report_dir(name: str | os.PathLike, root: Path) -> Path:
    """Directory of an evaluation's or pipeline's outputs: `root/reports/<name>`."""
    return root / "reports" / os.fspath(name)


class RunFiles(NamedTuple):
    """The files of one training run directory (see the layout above)."""

    dir: Path
    config: Path
    """The run's settings (JSON)."""
    log: Path
    """One CSV row per logged epoch."""
    best: Path
    """The checkpoint of the best validation so far."""
    last: Path
    """The resume point."""
    epochs: Path
    """Weights kept after some epochs (`--keep-interval`): `epoch_<n>.pt`."""

    def kept(self, epoch: int) -> Path:
        return self.epochs / f"epoch_{epoch:04d}.pt"


def run_files(run_dir: Path) -> RunFiles:
    run_dir = Path(run_dir)
    return RunFiles(run_dir, run_dir / "config.json", run_dir / "log.csv", run_dir / "best.pt",
                    run_dir / "last.pt", run_dir / "epochs")


def ensure_writable_dir(directory: Path) -> Path:
    """Create `directory` if needed and check we can write there, with a clear error."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UserError(f"cannot write to {directory}: {error.strerror or error}") from error
    return directory


def atomic_write_path(path: Path, write_to: Callable[[Path], None], suffix: str = ".tmp") -> None:
    """Write a file atomically through a path: `write_to(tmp)` fills a temp file beside
    `path` (named with `suffix`, for writers that infer the format), then it is renamed over
    `path`. A crash at any moment leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other users
    try:
        write_to(Path(tmp_name))
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def check_output_dir(directory: str | os.PathLike, flag: str = "--out") -> Path:
    """An output directory checked before any work: not a file, creatable, writable."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{flag} {directory} is a file; give a directory")
    return ensure_writable_dir(directory)


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """An output file checked before any work: its folder exists and it is not a folder."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{flag} {path}: no such directory {path.parent}")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; give the file to write")
    return path


def _is_picture(head: bytes) -> bool:
    return head.startswith((b"GIF87a", b"GIF89a")) or head[4:8] == b"ftyp"


def check_output_picture(path: str | os.PathLike, flag: str = "--out") -> Path:
    """A GIF/MP4 output checked before any rendering: the right suffix, a writable folder,
    and never replacing a file that is not a GIF or MP4 (a dataset, a checkpoint...)."""
    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"{flag} {path}: the output must end in .gif or .mp4")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; give a file name ending in .gif")
    if path.exists():
        with open(path, "rb") as handle:
            if not _is_picture(handle.read(12)):
                raise UserError(f"{flag} {path} exists and is not a GIF or MP4; refusing to "
                                "replace it (choose another --out)")
    ensure_writable_dir(path.parent)
    return path


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write a file atomically: `write(fileobj)` into a temp file, fsync, rename over `path`."""
    def write_to(tmp: Path) -> None:
        with open(tmp, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    atomic_write_path(path, write_to)


def atomic_pickle(path: Path, obj: Any) -> None:
    """Pickle `obj` to `path` atomically."""
    atomic_write(path, lambda handle: pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL))


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` atomically."""
    atomic_write(path, lambda handle: handle.write(text), mode="w")

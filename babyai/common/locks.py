"""One writer at a time: an exclusive lock per dataset, run directory, level set or report.

Two processes writing the same output interleave or lose each other's work (two
generations on one `--demos` name, two trainings on one `--model`). Every command that
writes takes :func:`writer_lock` on its output first; a second one stops at once with a
clear message instead of waiting. The lock is an OS file lock (`filelock`, `flock` on
POSIX) on a hidden file beside the output, so it is released when the process ends, even
by `kill -9`; the lock file itself may stay behind and is harmless.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from babyai.common.errors import UserError


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of an output: `.<name>.lock` beside it."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def writer_lock(target: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Hold the exclusive writer lock of `target` (a file or directory) for the block.

    Raises:
        UserError: another process holds it (naming the output and the lock file).
    """
    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot write to {path.parent}: {error.strerror or error}") from error
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"another process is writing the {what} {target} (lock {path}); "
                        "wait for it to finish, or choose another name") from None
    try:
        yield path
    finally:
        lock.release()

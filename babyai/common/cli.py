"""Helpers shared by the thin scripts in `scripts/`."""
from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Any, Callable, Sequence

from babyai.common.errors import UserError

EXIT_USER_ERROR = 2


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run a script's `main`, turning a :class:`UserError` into one line and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main(argv)
    except UserError as error:
        prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "babyai"
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        advice = {errno.ENOSPC: "free some disk space or point --storage elsewhere",
                  errno.EDQUOT: "free some disk space or point --storage elsewhere",
                  errno.EACCES: "choose a writable --storage (or fix the permissions)",
                  errno.EROFS: "choose a writable --storage"}.get(error.errno)
        if advice is None:
            raise
        prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "babyai"
        where = f" ({error.filename})" if error.filename else ""
        print(f"{prog}: error: {error.strerror}{where}: {advice}; "
              "rerun the same command afterwards, saved work is kept", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; the last saved state is intact, rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 0


def _checked(name: str, convert: Callable[[str], float], ok: Callable[[float], bool],
             expected: str, doc: str) -> Callable[[str], Any]:
    """An argparse type: `convert(text)`, rejected unless `ok(value)`."""
    def parse(text: str) -> Any:
        value = convert(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    parse.__doc__ = f"argparse type: {doc}."
    parse.__name__ = name  # argparse names it in "invalid <name> value" messages
    return parse


positive_int = _checked("positive_int", int, lambda value: value > 0, "a positive integer",
                        "an integer > 0")
non_negative_int = _checked("non_negative_int", int, lambda value: value >= 0, ">= 0",
                            "an integer >= 0")
positive_float = _checked("positive_float", float, lambda value: value > 0, "> 0", "a float > 0")
non_negative_float = _checked("non_negative_float", float, lambda value: value >= 0, ">= 0",
                              "a float >= 0")
probability = _checked("probability", float, lambda value: 0.0 <= value <= 1.0, "in [0, 1]",
                       "a float in [0, 1]")


def choice_list(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated values, each one of `choices`, in the given order."""

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [value for value in values if value not in choices]
        if not values or unknown:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(choices)}; got {text!r}")
        return values

    return parse


def probability_list(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated floats in [0, 1], e.g. `0.25,0.5,1` (repeats dropped)."""
    try:
        values = tuple(dict.fromkeys(float(part) for part in text.split(",") if part.strip()))
    except ValueError:
        values = ()
    if not values or not all(0.0 <= value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of numbers in [0, 1]; got {text!r}")
    return values


def add_storage_flag(parser: argparse.ArgumentParser) -> None:
    """The one storage-root flag every script shares."""
    parser.add_argument(
        "--storage", default=None,
        help="storage root for demos, models and logs "
             "(default: $TC_STORAGE, else ./storage)")

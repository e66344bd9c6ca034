"""User-facing errors.

Anything a user can cause (a missing file, an unknown level, a bad flag value, an
incompatible checkpoint) raises :class:`UserError`. Scripts turn it into one clear line
on stderr and exit code 2 (see :func:`babyai.common.cli.run`); everything else is a bug and keeps
its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input, reported as a single line."""

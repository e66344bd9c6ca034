"""BabyAI environments from gymnasium + Farama minigrid.

Level generation in minigrid prints "Sampling rejected: ..." and "Timeout during mission
generation: ..." on stdout when it redraws a level; :func:`make_env` filters those lines so
they never reach the user.
"""
from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the BabyAI-* environments)
from minigrid.core.actions import Actions

from babyai.common.errors import UserError

ACTION_NAMES = tuple(action.name for action in Actions)
"""left, right, forward, pickup, drop, toggle, done: minigrid's `Actions`, by index."""


def babyai_levels() -> list[str]:
    """All registered BabyAI level ids."""
    return sorted(name for name in gym.envs.registry if name.startswith("BabyAI-"))


def check_level(name: str) -> str:
    """Return `name` if it is a registered BabyAI level, else raise a clear error."""
    if name not in gym.envs.registry or not name.startswith("BabyAI-"):
        close = [level for level in babyai_levels() if name.lower().split("-")[1:2]
                 and name.lower().split("-")[1] in level.lower()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown level {name!r}{hint}; see babyai.env.envs.babyai_levels()")
    return name


LEVEL_GENERATION_CHATTER = ("Sampling rejected", "Timeout during mission generation")


class _DropSamplingRejected(io.TextIOBase):
    """A stdout filter that drops minigrid's level-generation chatter."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if not line.startswith(LEVEL_GENERATION_CHATTER):
                self.target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending and not self.pending.startswith(LEVEL_GENERATION_CHATTER):
            self.target.write(self.pending)
        self.pending = ""
        self.target.flush()


class QuietReset(gym.Wrapper):
    """Reset without minigrid's level-generation chatter on stdout."""

    def reset(self, **kwargs: Any):
        stream = _DropSamplingRejected(sys.stdout)
        with contextlib.redirect_stdout(stream):
            result = self.env.reset(**kwargs)
        stream.flush()
        return result


def make_env(name: str, **kwargs: Any) -> gym.Env:
    """Create a BabyAI level by id, quiet and unchecked by gymnasium's env checker."""
    check_level(name)
    env = gym.make(name, disable_env_checker=True, **kwargs)
    return QuietReset(env)


_CACHED: dict[str, gym.Env] = {}


def cached_env(name: str) -> gym.Env:
    """One environment per level and process, reused across episodes (each reset reseeds it).

    Worker processes generating demos or measuring level sets play thousands of seeds;
    building the environment once per level saves the construction every time.
    """
    if name not in _CACHED:
        _CACHED[name] = make_env(name)
    return _CACHED[name]

"""Checks that stop (or flag) evaluations whose numbers would be silently wrong.

* A level set built for one level and evaluated on another measures nothing: the seeds
  were binned by that level's missions and solutions. Our level sets record their level;
  for original-layout sets the missions they record are compared with the level's.
* A model that cannot read most words of a level's missions (a GoToLocal model on
  MiniBossLevel) sees them as `<unk>`; its success there says little about the model, so
  the evaluation warns, naming a few unknown words.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

from babyai.common.errors import UserError
from babyai.data.vocab import tokenize
from babyai.env.envs import cached_env
from babyai.evaluation.level_files import level_set_env

logger = logging.getLogger(__name__)

MISSIONS_CHECKED = 20
"""Seeds whose missions are compared (level sets) or read (vocabulary coverage)."""
UNKNOWN_WORDS_WARNING = 0.1
"""Warn when more than this share of mission words is outside the model's vocabulary."""


def mission_of(env_name: str, seed: int) -> str:
    """The mission of a level at a seed (one reset)."""
    observation, _ = cached_env(env_name).reset(seed=int(seed))
    return str(observation["mission"])


def check_level_set_env(levels: dict, path: str | Path, env_name: str) -> None:
    """Refuse a level set that was built for another level than `env_name`."""
    built_for = level_set_env(path)
    if built_for is not None:
        if built_for != env_name:
            raise UserError(f"{path} was built for {built_for}, not {env_name}; evaluate it "
                            f"with --env {built_for}, or build a set for {env_name}")
        return
    recorded = [(seed, info["mission"]) for bins in levels.values() for seeds in bins.values()
                for seed, info in seeds.items()
                if isinstance(info, dict) and isinstance(info.get("mission"), str)]
    for seed, mission in recorded[:MISSIONS_CHECKED]:
        actual = mission_of(env_name, seed)
        if actual != mission:
            raise UserError(f"{path} records mission {mission!r} for seed {seed}, but "
                            f"{env_name} gives {actual!r} there: the set was built for "
                            "another level (check --env)")


def warn_unreadable_missions(vocab: Any, env_name: str, seeds: Iterable[int],
                             model: str) -> float:
    """Warn when `vocab` misses many words of the level's missions; returns the share of
    unknown words among the first :data:`MISSIONS_CHECKED` seeds' missions."""
    words: list[str] = []
    for seed in list(seeds)[:MISSIONS_CHECKED]:
        words.extend(tokenize(mission_of(env_name, seed)))
    unknown = [word for word in words if word not in vocab.stoi]
    share = len(unknown) / max(len(words), 1)
    if share > UNKNOWN_WORDS_WARNING:
        examples = ", ".join(repr(word) for word in list(dict.fromkeys(unknown))[:5])
        logger.warning("warning: %s does not know %.0f%% of the words in %s missions (e.g. %s); "
                       "they are read as <unk>, so its results there say little about it",
                       model, 100 * share, env_name, examples)
    return share


def check_oracle_options(shares: Sequence[float], conditions: Sequence[str],
                         families: Sequence[str] = ()) -> None:
    """--oracle-share below 1 and --oracle-families are about the oracle condition: refuse
    them without one."""
    if (any(share < 1.0 for share in shares) or families) and "oracle" not in conditions:
        raise UserError("--oracle-share and --oracle-families apply to the oracle condition: "
                        "add oracle to --thought-ablation")

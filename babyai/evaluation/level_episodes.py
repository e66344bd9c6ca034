"""Reading back the `episodes.jsonl` of a level-set evaluation (`tc-evaluate-levels`, and
`tc-study --ood-levels` per run): each line's series, bins and episode record."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babyai.agent.records import EpisodeRecord
from babyai.common.errors import UserError
from babyai.evaluation.difficulty import COGNITIVE

SERIES_KEYS = ("model", "model_name", "thought_ablation", "oracle_share", "oracle_families",
               "bins")
"""What a line holds besides its EpisodeRecord."""


@dataclass(frozen=True)
class LevelEpisode:
    """One line: a model under one thought condition, on one seed."""

    series: str
    """The report's label: the model and its condition, e.g. `tc (oracle thoughts)`."""
    model: str
    """The model alone (lines written before conditions were recorded: the label)."""
    thought_ablation: str | None
    """none, oracle, zeroed or shuffled (None in lines written before it was recorded)."""
    oracle_share: float | None
    """The oracle condition's share of the bot's subgoals handed over (1 = all)."""
    oracle_families: tuple[str, ...]
    """The oracle condition's families of thought handed over (empty: every family)."""
    bins: tuple[tuple[str, Any], ...]
    """(difficulty kind, bin label) of every bin the seed is counted in."""
    record: EpisodeRecord


def read_level_episodes(path: Path) -> list[LevelEpisode]:
    """Every line of the file; a missing or malformed file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file (an evaluation's episodes.jsonl)")
    episodes = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            bins = tuple((str(kind), label) for kind, label in item["bins"])
            share = item.get("oracle_share")
            episodes.append(LevelEpisode(
                series=str(item["model"]), model=str(item.get("model_name") or item["model"]),
                thought_ablation=item.get("thought_ablation"),
                oracle_share=None if share is None else float(share),
                oracle_families=tuple(str(name) for name in item.get("oracle_families") or ()),
                bins=bins,
                record=EpisodeRecord.from_json({key: value for key, value in item.items()
                                                if key not in SERIES_KEYS})))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path}:{number}: not an evaluation episode ({error})") from error
    return episodes


def cognitive_levels(episode: LevelEpisode, path: Path) -> list[int]:
    """The cognitive-difficulty bins (1-9) the episode is counted in."""
    try:
        return [int(label) for kind, label in episode.bins if kind == COGNITIVE]
    except ValueError as error:
        raise UserError(f"{path}: seed {episode.record.seed}: a cognitive bin that is not a "
                        f"number ({error})") from error

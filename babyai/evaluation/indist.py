"""In-distribution success: fresh levels of the training level, for one or more models.

Each model plays `episodes` levels with seeds `first_seed, first_seed + 1, ...` (by default
in a range no demo, validation or level-set seed uses), sampled actions as in the paper.
The result per model: success with its 95% Wilson interval, success per mission type, mean
length and, for TC models, the future-action declaration score. An untrained agent of a
model's architecture gives the chance-level reference.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from babyai.agent.checkpoint import load_agent, load_checkpoint
from babyai.evaluation.checks import warn_unreadable_missions
from babyai.agent.model import Agent, build_agent
from babyai.agent.records import EpisodeRecord
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.common.cli import non_negative_int, positive_int
from babyai.common.errors import UserError
from babyai.common.seeds import IN_DISTRIBUTION_START
from babyai.common.storage import atomic_write_text, checkpoint_path, ensure_writable_dir
from babyai.data.vocab import Vocabulary
from babyai.evaluation.declaration import score_records
from babyai.evaluation.stats import success_by_mission_type, summarize_success
from babyai.evaluation.writers import write_jsonl


@dataclass
class IndistConfig:
    """What `tc-evaluate` evaluates and where it writes (every field is a flag)."""

    env: str
    """BabyAI level id."""
    models: list[str] = field(default_factory=list, metadata={"name": "--model"})
    """Model name under <storage>/models or a `.pt` path (repeatable)."""
    untrained_like: str | None = field(default=None, metadata={"metavar": "MODEL"})
    """Also evaluate a freshly initialised agent with MODEL's architecture (the
    chance-level reference)."""
    episodes: int = field(default=200, metadata={"type": positive_int})
    """Levels per model."""
    first_seed: int = field(default=IN_DISTRIBUTION_START, metadata={"type": non_negative_int})
    """First level seed: levels are first_seed, first_seed + 1, ..., by default in a range
    that no demo, validation or level-set seed uses."""
    argmax: bool = False
    """Greedy actions (default: sampled, as in the paper)."""
    out: Path | None = None
    """Output directory for summary.json and episodes.jsonl (default: print only)."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    storage: Path | None = None
    """Storage root (default: $TC_STORAGE, else ./storage)."""


def untrained_copy(model: str, root: Path, seed: int = 0) -> tuple[Agent, Vocabulary]:
    """A freshly initialised agent with the architecture and vocabulary of `model`."""
    checkpoint = load_checkpoint(checkpoint_path(model, root))
    torch.manual_seed(seed)
    return build_agent(checkpoint.agent.config).eval(), checkpoint.vocab


def evaluate_models(config: IndistConfig, root: Path, device: torch.device
                    ) -> tuple[dict[str, dict], dict[str, list[EpisodeRecord]]]:
    """Every model (and the untrained reference) on the same levels: summaries and records."""
    if not config.models and not config.untrained_like:
        raise UserError("give at least one --model (or --untrained-like)")
    seeds = list(range(config.first_seed, config.first_seed + config.episodes))
    agents = [(name, *load_agent(name, root, device)[:2]) for name in config.models]
    for name, _, vocab in agents:
        warn_unreadable_missions(vocab, config.env, seeds, name)
    if config.untrained_like:
        agents.append(("untrained", *untrained_copy(config.untrained_like, root)))
    summary: dict[str, dict] = {}
    records: dict[str, list[EpisodeRecord]] = {}
    for name, agent, vocab in agents:
        played = run_episodes(agent.to(device), vocab, config.env, seeds,
                              RolloutOptions(argmax=config.argmax, progress=True), device=device)
        by_type = success_by_mission_type(played)
        entry: dict[str, Any] = {
            "env": config.env, "seeds": [seeds[0], seeds[-1]], "argmax": config.argmax,
            **dataclasses.asdict(summarize_success(played)),
            "mean_length": sum(r.length for r in played) / len(played),
            "by_mission_type": {k: dataclasses.asdict(v) for k, v in by_type.items()}}
        if agent.config.use_thoughts:
            entry["declaration"] = score_records(played).as_dict()
        summary[name], records[name] = entry, played
    return summary, records


def write_outputs(out: Path, summary: dict[str, dict],
                  records: dict[str, list[EpisodeRecord]]) -> tuple[Path, Path]:
    """`summary.json` and `episodes.jsonl` (one line per model and episode) in `out`."""
    out = ensure_writable_dir(Path(out))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_jsonl(out / "episodes.jsonl", ({"model": name, **record.to_json()}
                                         for name, played in records.items()
                                         for record in played))
    return out / "summary.json", out / "episodes.jsonl"

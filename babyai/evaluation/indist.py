"""In-distribution success: fresh levels of the training level, for one or more models.

Each model plays `episodes` levels with seeds `first_seed, first_seed + 1, ...` (by default
in a range no demo, validation or level-set seed uses), sampled actions as in the paper.
The result per model: success with its 95% Wilson interval, success per mission type, mean
length and, for TC models, the future-action declaration score, how often its thought
equals the bot's thought for the same state, and the same under the thought-reliance
ablations asked for (oracle, zeroed or shuffled thoughts). An untrained agent of a
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
from babyai.evaluation.checks import check_oracle_options, warn_unreadable_missions
from babyai.agent.model import Agent, build_agent
from babyai.agent.records import (EpisodeRecord, oracle_step_share, thought_agreement,
                                  thought_following)
from babyai.agent.rollout import (THOUGHT_ABLATIONS, RolloutOptions, ThoughtCondition,
                                  run_episodes, thought_conditions)
from babyai.common.cli import choice_list, non_negative_int, positive_int, probability_list
from babyai.common.errors import UserError
from babyai.common.runtime import torch_threads
from babyai.common.seeds import IN_DISTRIBUTION_START
from babyai.common.storage import atomic_write_text, checkpoint_path, ensure_writable_dir
from babyai.data.vocab import Vocabulary
from babyai.env.thoughts import FAMILY_NAMES
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
    thought_ablation: tuple[str, ...] = field(
        default=("none",), metadata={"type": choice_list(THOUGHT_ABLATIONS), "metavar": "LIST"})
    """Comma-separated conditions for TC models, reported side by side: none (own
    thoughts), oracle (the bot's thoughts: the paper's upper bound), zeroed (no thought),
    shuffled (another episode's thought); e.g. none,oracle,zeroed,shuffled."""
    oracle_share: tuple[float, ...] = field(
        default=(1.0,), metadata={"type": probability_list, "metavar": "LIST"})
    """With the oracle condition: comma-separated shares of the bot's subgoals handed to the
    lower level, one condition each (e.g. 0,0.25,0.5,0.75,1): each time the bot's thought
    changes it is read, until its next change, with that probability, else the agent's own."""
    oracle_families: tuple[str, ...] = field(
        default=(), metadata={"type": choice_list(FAMILY_NAMES), "metavar": "LIST"})
    """With the oracle condition: hand over only the bot's thoughts of these families
    (e.g. explore,open; default every family)."""
    thought_agreement: bool = True
    """Ask the bot for its thought at every state a TC model visits (own thoughts only) and
    report how often the model's thought equals it (costs about a third more time)."""
    out: Path | None = None
    """Output directory for summary.json and episodes.jsonl (default: print only)."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    threads: int = field(default=1, metadata={"type": positive_int})
    """torch CPU threads. One is the safe choice on a shared machine: two evaluations of
    torch's default two threads side by side on 2 cores took 7 minutes for 300
    MiniBossLevel episodes, where one thread each took 15 seconds."""
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
    check_oracle_options(config.oracle_share, config.thought_ablation, config.oracle_families)
    seeds = list(range(config.first_seed, config.first_seed + config.episodes))
    agents = [(name, *load_agent(name, root, device)[:2]) for name in config.models]
    for name, _, vocab in agents:
        warn_unreadable_missions(vocab, config.env, seeds, name)
    if config.untrained_like:
        agents.append(("untrained", *untrained_copy(config.untrained_like, root)))
    summary: dict[str, dict] = {}
    records: dict[str, list[EpisodeRecord]] = {}
    with torch_threads(config.threads):
        for name, agent, vocab in agents:
            agent = agent.to(device)
            tc = bool(agent.config.use_thoughts)
            # The untrained reference is the chance level: no ablations for it.
            reference = name == "untrained" and bool(config.untrained_like)
            conditions = (thought_conditions(config.thought_ablation, config.oracle_share,
                                             config.oracle_families)
                          if tc and not reference else [ThoughtCondition()])
            for condition in conditions:
                label = condition.label(name)
                agreement = tc and condition.ablation == "none" and config.thought_agreement
                options = RolloutOptions(argmax=config.argmax, progress=True,
                                         thought_ablation=condition.ablation,
                                         oracle_share=condition.oracle_share,
                                         oracle_families=condition.oracle_families,
                                         bot_thoughts=agreement)
                played = run_episodes(agent, vocab, config.env, seeds, options, device=device)
                summary[label] = _summary(config, seeds, played, tc, condition)
                records[label] = played
    return summary, records


def _summary(config: IndistConfig, seeds: list[int], played: list[EpisodeRecord], tc: bool,
             condition: ThoughtCondition) -> dict[str, Any]:
    by_type = success_by_mission_type(played)
    ablation = condition.ablation
    entry: dict[str, Any] = {
        "env": config.env, "seeds": [seeds[0], seeds[-1]], "argmax": config.argmax,
        "thought_ablation": ablation, **dataclasses.asdict(summarize_success(played)),
        "mean_length": sum(r.length for r in played) / len(played),
        "by_mission_type": {k: dataclasses.asdict(v) for k, v in by_type.items()}}
    if tc:
        entry["declaration"] = score_records(played).as_dict()
        entry["bot_gave_up"] = sum(r.bot_failure is not None for r in played)
        if ablation == "oracle":
            entry["oracle_share"] = condition.oracle_share
            entry["oracle_families"] = list(condition.oracle_families)
            entry["oracle_step_share"] = oracle_step_share(played)
        agreement = thought_agreement(played)
        if ablation == "none" and agreement.steps:
            entry["thought_agreement"] = agreement.as_dict()
        entry["thought_following"] = thought_following(played).as_dict()
    return entry


def format_conditions(summary: dict[str, dict]) -> str:
    """One line per model and condition: success, interval, declaration, thought agreement
    (same sentence as the bot's; same family), thought following (pickups of the object the
    thought named)."""
    width = max([len("model (condition)"), *map(len, summary)])
    lines = [f"{'model (condition)':<{width}} {'success':>8} {'95% interval':>16} "
             f"{'declared':>9} {'agrees':>7} {'intends':>8} {'follows':>8}"]

    def cell(value: float | None, width: int) -> str:
        return f"{'-' if value is None else f'{value:.3f}':>{width}}"

    for label, entry in summary.items():
        lines.append(f"{label:<{width}} {entry['success_rate']:>8.3f} "
                     f"[{entry['ci_low']:.3f}, {entry['ci_high']:.3f}] "
                     f"{cell(entry.get('declaration', {}).get('declaration_score'), 9)} "
                     f"{cell(entry.get('thought_agreement', {}).get('exact_match'), 7)} "
                     f"{cell(entry.get('thought_agreement', {}).get('intention_match'), 8)} "
                     f"{cell(entry.get('thought_following', {}).get('named_object_rate'), 8)}")
    return "\n".join(lines)


def write_outputs(out: Path, summary: dict[str, dict],
                  records: dict[str, list[EpisodeRecord]]) -> tuple[Path, Path]:
    """`summary.json` and `episodes.jsonl` (one line per model and episode) in `out`."""
    out = ensure_writable_dir(Path(out))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_jsonl(out / "episodes.jsonl", ({"model": name, **record.to_json()}
                                         for name, played in records.items()
                                         for record in played))
    return out / "summary.json", out / "episodes.jsonl"

"""On-policy demonstrations (DAgger): the thinking bot labels the states the agent reaches.

Imitation trains on the demonstrator's states only. A learned agent soon reaches states the
demonstrator never visits, and there it has nothing to imitate: the bot's demos never hold
a key the mission does not name by mistake (their noise only turns and steps; slips,
`tc-make-demos --slip-rate`, are the exception), so an agent that picks one up keeps
thinking "unlock ... door" where the bot would drop it (the key loop `tc-failure-modes`
counts). DAgger (Ross, Gordon and Bagnell, 2011) plays the agent,
asks the expert what it would do at every state reached, and adds those labels to the
training data. The thinking bot labels both levels at once: its thought and its action.

By default the agent's own sampled actions drive each episode (DAgger's beta = 0, the usual
choice once a policy has been trained on the expert's demos); with `--beta` the bot's
suggestion executes instead at each step with that probability, which keeps the episodes
nearer the demonstrator's states and shortens the agent's failure loops. The bot is asked
at every state, and after any executed action it did not suggest it plans the rest of the
mission afresh from where the agent stands (the same bot the oracle evaluation asks,
:meth:`babyai.env.bot.ThinkingBot.act` with `replan=True`). An episode becomes a
demonstration whose images and directions are what the agent saw and whose actions and
thoughts are the bot's; it stops where the bot gives up. Episode k plays level
`DAGGER_START + seed + k` (see babyai.common.seeds), away from every evaluation range.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from babyai.agent.checkpoint import load_agent
from babyai.agent.records import EpisodeRecord
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.common.cli import non_negative_int, positive_int, probability
from babyai.common.errors import UserError
from babyai.common.locks import writer_lock
from babyai.common.runtime import torch_threads
from babyai.common.seeds import DAGGER_START
from babyai.common.storage import demos_path, storage_root
from babyai.demos.episode import Episode
from babyai.demos.files import PackedEpisode, read_demo_file, save_demos, settings_id
from babyai.env.thoughts import thought_family

log = logging.getLogger(__name__)

SOURCE = "dagger"
"""The `source` of a file's metadata that marks on-policy labels."""


def labelled_episode(record: EpisodeRecord) -> Episode | None:
    """The bot-labelled demonstration of one played episode (None if the bot labelled no step).

    Needs a record played with `bot_thoughts=True` and `keep_observations=True`. Labels run
    from the first step to the last the bot answered: the bot is asked before every
    executed step until it gives up, so its answers are a prefix of the steps.
    """
    labelled = len(record.bot_thoughts)
    if len(record.bot_actions) != labelled or len(record.observations) < labelled:
        raise ValueError(f"seed {record.seed}: the record has {labelled} bot thoughts, "
                         f"{len(record.bot_actions)} bot actions and "
                         f"{len(record.observations)} observations (play it with "
                         "bot_thoughts=True and keep_observations=True)")
    if labelled == 0:
        return None
    images = np.stack([image for image, _ in record.observations[:labelled]])
    directions = [direction for _, direction in record.observations[:labelled]]
    return Episode(record.mission, images, directions, record.bot_actions[:labelled],
                   record.bot_thoughts[:labelled], record.seed)


@dataclass(frozen=True)
class DaggerConfig:
    """What `tc-make-dagger-demos` plays and where it writes."""

    model: str
    """The agent that plays: a model name under <storage>/models (its best.pt) or a .pt path."""
    demos: str
    """Output name under <storage>/demos (or a .pkl path); train on it with
    `tc-train --extra-demos NAME`."""
    env: str | None = None
    """The level the agent plays (default: the level the checkpoint was trained on)."""
    episodes: int = field(default=1000, metadata={"type": positive_int})
    """Levels the agent plays (episodes where the bot gives up at once add nothing)."""
    seed: int = field(default=0, metadata={"type": non_negative_int})
    """Episode k plays level DAGGER_START + seed + k (choose another seed for fresh levels)."""
    sample_seed: int = field(default=0, metadata={"type": non_negative_int})
    """Seeds the agent's action sampling (with each level's seed)."""
    argmax: bool = False
    """Greedy actions instead of sampled ones."""
    beta: float = field(default=0.0, metadata={"type": probability})
    """DAgger's mixture: at each step the bot's suggested action executes instead of the
    agent's with this probability (0: the agent drives every step)."""
    save_interval: int = field(default=250, metadata={"type": positive_int})
    """Save atomically every this many levels; re-running the command continues there."""
    max_batch: int = field(default=64, metadata={"type": positive_int})
    """Environments stepped together."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""

    def meta(self, checkpoint: Path) -> dict:
        """The settings written into (and checked against) the output file."""
        stat = checkpoint.stat()
        return {"env": self.env, "source": SOURCE, "model": str(checkpoint),
                "model_fingerprint": f"{stat.st_size}-{stat.st_mtime_ns}",
                "seed": self.seed, "sample_seed": self.sample_seed, "argmax": self.argmax,
                "beta": self.beta,
                "first_level_seed": DAGGER_START + self.seed}


@dataclass
class DaggerSummary:
    """What a collection produced."""

    path: Path
    played: int
    episodes: int
    steps: int
    success: float
    """Share of the levels played that were won (by the agent, or the mixture with --beta)."""
    bot_gave_up: int
    bot_step_share: float
    """Of the steps played, the share the bot's action drove (about `--beta`)."""
    families: Counter
    seconds: float

    def lines(self) -> list[str]:
        total = sum(self.families.values()) or 1
        top = ", ".join(f"{name} {100 * count / total:.1f}%"
                        for name, count in self.families.most_common(6))
        drivers = ("the agent alone" if self.bot_step_share == 0 else
                   f"the bot drove {100 * self.bot_step_share:.1f}% of steps")
        return [f"{self.path}: {self.episodes} labelled episodes ({self.steps} steps) from "
                f"{self.played} levels played; won {100 * self.success:.1f}% ({drivers}); "
                f"the bot gave up in {self.bot_gave_up}",
                f"  bot thoughts on the agent's states: {top}",
                f"  {self.seconds:.0f} s"]


_COUNTERS = ("played", "successes", "gave_up", "steps", "bot_steps")
"""Running totals saved with the episodes, so a resumed run reports the whole collection."""


def _resume_point(path: Path, run_id: str) -> tuple[list[PackedEpisode], dict]:
    """Episodes and counters of an interrupted run with the same settings (else nothing)."""
    if not path.exists():
        return [], dict.fromkeys(_COUNTERS, 0)
    saved = read_demo_file(path)
    if saved.meta.get("run_id") != run_id:
        raise UserError(f"{path} exists and was made with other settings "
                        f"(model, level, seeds); choose another --demos or delete it")
    progress = saved.meta.get("progress", {})
    return saved.episodes, {key: int(progress.get(key, 0)) for key in _COUNTERS}


def collect(config: DaggerConfig, progress: bool = True) -> DaggerSummary:
    """Play `config.episodes` levels with the agent, the bot labelling every state; write the
    labelled episodes (resuming an interrupted run with the same settings)."""
    root = storage_root(config.storage)
    path = demos_path(config.demos, root)
    loaded = load_agent(config.model, root)
    if config.env is None:
        trained_on = loaded.extra.get("train_config", {}).get("env")
        if not trained_on:
            raise UserError(f"{loaded.path} does not record its training level; pass --env")
        config = dataclasses.replace(config, env=trained_on)
    meta = config.meta(loaded.path)
    run_id = settings_id(meta)
    start = time.perf_counter()
    with writer_lock(path, "dataset"):
        episodes, counters = _resume_point(path, run_id)
        bar = tqdm(total=config.episodes, initial=counters["played"], desc="dagger levels",
                   unit="level", disable=not progress)
        try:
            while counters["played"] < config.episodes:
                first = counters["played"]
                count = min(config.save_interval, config.episodes - first)
                seeds = [DAGGER_START + config.seed + k for k in range(first, first + count)]
                options = RolloutOptions(argmax=config.argmax, max_batch=config.max_batch,
                                         bot_thoughts=True, keep_observations=True,
                                         sample_seed=config.sample_seed,
                                         bot_action_share=config.beta)
                with torch_threads(1):
                    records = run_episodes(loaded.agent, loaded.vocab, config.env, seeds,
                                           options)
                for record in records:
                    episode = labelled_episode(record)
                    if episode is not None:
                        episodes.append(PackedEpisode.pack(episode))
                    counters["successes"] += int(record.success)
                    counters["gave_up"] += int(record.bot_failure is not None)
                    counters["steps"] += record.length
                    counters["bot_steps"] += record.bot_steps
                counters["played"] += count
                save_demos(path, episodes, {**meta, "run_id": run_id, "split": "train",
                                            "progress": counters})
                bar.update(count)
        finally:
            bar.close()
    families = Counter(thought_family(thought) for episode in episodes
                       for thought in episode.thoughts)
    return DaggerSummary(path, counters["played"], len(episodes),
                         sum(len(episode) for episode in episodes),
                         counters["successes"] / max(counters["played"], 1),
                         counters["gave_up"], counters["bot_steps"] / max(counters["steps"], 1),
                         families, time.perf_counter() - start)

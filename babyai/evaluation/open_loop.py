"""The agent's thoughts and actions on the demonstrator's own path ("open loop").

In closed loop (`tc-evaluate-levels --thought-agreement`) the agent's thoughts are compared
with the bot's at the states the agent reached, after its own earlier mistakes. Here the bot
plays each level (no noise) and the agent only watches: at every step it sees the bot's
observation, thinks with its own thought history and picks an action, greedily, and both
are compared with the bot's. What the agent gets wrong here it gets wrong even where
nothing has drifted, so the gap between the two readings separates an upper level that
cannot name the right subgoal at all from one that loses its way off the demonstrator's
states (compounding errors).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from babyai.agent.model import Agent, AgentOutput
from babyai.agent.records import MISMATCH_KINDS, mismatch_kind
from babyai.agent.rollout import pad_tokens
from babyai.data.vocab import Vocabulary
from babyai.demos.episode import Episode
from babyai.demos.generate import attempt_episode
from babyai.env.thoughts import thought_family


@dataclass
class WatchedEpisode:
    """One level the bot played, with what the agent thought and chose at each of its steps."""

    seed: int
    mission: str
    bot_thoughts: list[str]
    bot_actions: list[int]
    thoughts: list[str]
    actions: list[int]


def bot_episodes(env_name: str, seeds: Sequence[int]) -> tuple[list[Episode], list[int]]:
    """The bot's noiseless episode of each seed, and the seeds where the bot failed."""
    episodes, failed = [], []
    for seed in seeds:
        played = attempt_episode(env_name, int(seed), noise_rate=0.0)
        if isinstance(played, Episode):
            episodes.append(played)
        else:
            failed.append(int(seed))
    return episodes, failed


@torch.no_grad()
def run_along(agent: Agent, vocab: Vocabulary, chunk: Sequence[Episode], *,
              teacher_forced: bool = False, device: Any = "cpu") -> Iterator[tuple[int, AgentOutput]]:
    """Run the agent along a batch of episodes' observations, one step at a time: (t, the
    agent's output for every episode at step t). Its lower level reads its own thoughts, or
    with `teacher_forced` each episode's thought of that step. An episode that has ended
    repeats its last frame and thought; callers keep only steps t < its length."""
    lengths = [len(episode.actions) for episode in chunk]
    mission = agent.encode_missions(pad_tokens([vocab.encode(e.mission) for e in chunk], device))
    memory = agent.initial_memory(len(chunk), device)
    for t in range(max(lengths)):
        last = [min(t, n - 1) for n in lengths]
        frames = np.stack([e.images[k] for e, k in zip(chunk, last)])
        thoughts = (pad_tokens([vocab.encode_thought(e.thoughts[k]) for e, k in zip(chunk, last)],
                               device) if teacher_forced else None)
        out = agent(torch.as_tensor(frames, device=device).long(), mission, memory,
                    thought_target=thoughts, teacher_forcing=teacher_forced,
                    with_thought_logits=False)
        memory = out.memory
        yield t, out


def watch(agent: Agent, vocab: Vocabulary, episodes: Sequence[Episode], *,
          batch_size: int = 64, device: Any = "cpu") -> list[WatchedEpisode]:
    """Run a TC agent along each episode's observations (its own thought history, greedy
    thoughts and actions, as at test time) and record its thoughts and actions."""
    if not agent.config.use_thoughts:
        raise ValueError("open-loop thoughts need a TC agent (this one has no upper level)")
    watched = []
    for first in range(0, len(episodes), batch_size):
        chunk = list(episodes[first:first + batch_size])
        lengths = [len(episode.actions) for episode in chunk]
        thoughts: list[list[str]] = [[] for _ in chunk]
        actions: list[list[int]] = [[] for _ in chunk]
        for t, out in run_along(agent, vocab, chunk, device=device):
            chosen = out.action_logits.argmax(dim=-1).tolist()
            for row, n in enumerate(lengths):
                if t < n:
                    thoughts[row].append(vocab.decode(out.thought_tokens[row].tolist()))
                    actions[row].append(int(chosen[row]))
        for row, episode in enumerate(chunk):
            watched.append(WatchedEpisode(int(episode.seed), episode.mission,
                                          list(episode.thoughts), [int(a) for a in episode.actions],
                                          thoughts[row], actions[row]))
    return watched


@dataclass
class OpenLoopSummary:
    """Step shares over a group of watched episodes."""

    episodes: int
    steps: int
    action_match: float
    """Share of steps where the agent's greedy action is the bot's."""
    kinds: dict[str, float]
    """Share of steps of each :data:`~babyai.agent.records.MISMATCH_KINDS` entry."""
    families: dict[str, tuple[float, float]]
    """Family of the bot's thought -> (share of steps, share of those matched exactly)."""

    @property
    def thought_match(self) -> float:
        return self.kinds["match"]


def summarize(watched: Sequence[WatchedEpisode]) -> OpenLoopSummary:
    kinds: Counter[str] = Counter()
    families: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    steps = same_action = 0
    for episode in watched:
        for t, (own, bot) in enumerate(zip(episode.thoughts, episode.bot_thoughts)):
            kind = mismatch_kind(own, episode.bot_thoughts, t)
            family = thought_family(bot)
            kinds[kind] += 1
            families[family] += 1
            matched[family] += kind == "match"
        same_action += sum(a == b for a, b in zip(episode.actions, episode.bot_actions))
        steps += len(episode.bot_actions)
    total = max(steps, 1)
    return OpenLoopSummary(
        len(watched), steps, same_action / total,
        {kind: kinds[kind] / total for kind in MISMATCH_KINDS},
        {family: (count / total, matched[family] / count)
         for family, count in families.most_common()})

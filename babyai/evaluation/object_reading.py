"""Does the lower level read which object its thought names? An intervention on the bot's path.

Closed-loop counts (`tc-failure-modes`, pick-up discrimination) mix reading with where the
agent happens to be: an agent that walks up to the objects its thoughts name picks them up
more often than others even if it never reads the object's words. Here the states are held
fixed. The bot plays each level (no noise); the agent is run along the bot's observations,
its lower level fed the bot's thoughts (as in the oracle evaluation), and at every step where
the bot presses pickup facing the object its pick-up thought names by colour, the agent's
probability of pickup is read four times: with the bot's thought, and with that thought
changed over the whole run of steps it was in force (the approach included) to name another
colour, another kind of object, or to be a thought of another family ("explore unseen
area"). A lower level that reads the object drops pickup when the thought stops naming what
is in front; one that reads only the kind of thought drops it for the other family alone.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch
from minigrid.core.actions import Actions
from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

from babyai.agent.layers import FRONT_CELL
from babyai.agent.model import Agent
from babyai.data.vocab import Vocabulary
from babyai.demos.episode import Episode
from babyai.env.thoughts import COLORS, PICKABLE, names_object, picked_object
from babyai.evaluation.open_loop import run_along

CHANGES = ("none", "colour", "kind", "family")
"""How the bot's thought is changed: not at all, another colour, another kind of object,
another family of thought."""
OTHER_FAMILY = "explore unseen area"
PICKUP = int(Actions.pickup)


def pickup_steps(episode: Episode) -> list[int]:
    """Steps where the bot presses pickup facing a key, ball or box its thought names with a
    colour (and, where the thought says one, the kind)."""
    steps = []
    for t, (thought, action) in enumerate(zip(episode.thoughts, episode.actions)):
        kind_code, colour_code, _ = episode.images[t][FRONT_CELL]
        kind, colour = IDX_TO_OBJECT[int(kind_code)], IDX_TO_COLOR.get(int(colour_code))
        named = picked_object(thought)
        if (int(action) == PICKUP and kind in PICKABLE and named is not None
                and named[0] is not None and names_object(thought, colour, kind)):
            steps.append(t)
    return steps


def change_thought(thought: str, change: str) -> str:
    """The thought naming the next colour, the next kind of object (key -> ball -> box ->
    key), or replaced by a thought of another family."""
    if change == "none":
        return thought
    if change == "family":
        return OTHER_FAMILY
    options = {"colour": COLORS, "kind": PICKABLE}[change]
    return " ".join(options[(options.index(word) + 1) % len(options)] if word in options
                    else word for word in thought.split())


def changed_episode(episode: Episode, steps: Sequence[int], change: str) -> Episode:
    """The episode with the thought of each step in `steps` changed over the run of steps
    that thought was in force up to that step."""
    thoughts = list(episode.thoughts)
    for step in steps:
        first = step
        while first > 0 and episode.thoughts[first - 1] == episode.thoughts[step]:
            first -= 1
        for t in range(first, step + 1):
            thoughts[t] = change_thought(episode.thoughts[step], change)
    return replace(episode, thoughts=thoughts)


def pickup_probabilities(agent: Agent, vocab: Vocabulary, episodes: Sequence[Episode],
                         steps: Sequence[Sequence[int]], *, batch_size: int = 64,
                         device: Any = "cpu") -> list[float]:
    """P(pickup) of a TC agent run along each episode with its thoughts teacher-forced, at
    each episode's `steps` (in order)."""
    if not agent.config.use_thoughts:
        raise ValueError("object reading needs a TC agent (this one reads no thoughts)")
    found: list[float] = []
    for first in range(0, len(episodes), batch_size):
        chunk = list(episodes[first:first + batch_size])
        probabilities = np.zeros((len(chunk), max(len(e.actions) for e in chunk)))
        for t, out in run_along(agent, vocab, chunk, teacher_forced=True, device=device):
            probabilities[:, t] = torch.softmax(out.action_logits.float(), -1)[:, PICKUP].cpu()
        for row, wanted in enumerate(steps[first:first + batch_size]):
            found.extend(float(probabilities[row, t]) for t in wanted)
    return found


@dataclass
class ObjectReading:
    """Mean P(pickup) at the bot's pick-up steps under each change of its thought."""

    steps: int
    pickup: dict[str, float]
    """:data:`CHANGES` entry -> mean probability of pickup."""


def object_reading(agent: Agent, vocab: Vocabulary, episodes: Sequence[Episode], *,
                   device: Any = "cpu") -> ObjectReading:
    steps = [pickup_steps(episode) for episode in episodes]
    pickup = {}
    for change in CHANGES:
        changed = [changed_episode(e, s, change) for e, s in zip(episodes, steps)]
        values = pickup_probabilities(agent, vocab, changed, steps, device=device)
        pickup[change] = float(np.mean(values)) if values else float("nan")
    return ObjectReading(sum(map(len, steps)), pickup)

"""Two failure modes of an evaluation's episodes, counted per group of cognitive bins.

* **Key loop**: the agent thinks "unlock <colour> door" while the bot, asked at the same
  state, would drop the key it holds ("drop <key> temporary to ..."): the upper level
  explains the key in its hands by a door to unlock, typically after the lower level picked
  it up by mistake, and wanders. Needs an evaluation with the bot's thoughts recorded
  (`tc-evaluate-levels --thought-agreement`).
* **Key not named by the mission**: the agent picked up a key with empty hands that the
  mission does not mention. Measured from the environment's records, so it applies to BC
  as well; it includes keys the level does need (locked doors), so it is an upper bound on
  mistaken pick-ups, for comparing agents rather than an error count.

For each, the share of episodes where it happens and the success with and without it.

And one measure of the lower level, **pick-up discrimination**: at the steps where the agent
faces a key, ball or box with empty hands, how often it presses pickup, by what the thought
in force says about that object (a pick-up thought that names it, one that names another
object, a thought of another kind). The bot picks up 99% of the time in the first case and
never in the other two; a lower level that reads only the kind of thought ("pickup") and
not its object presses pickup as often in the second case as in the first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from minigrid.core.actions import Actions

from babyai.agent.records import EpisodeRecord
from babyai.env.thoughts import PICKABLE, names_object, thought_family
from babyai.evaluation.stats import Rate


def has_key_loop(record: EpisodeRecord) -> bool:
    """Some step where the agent's thought is of family `unlock` and the bot's of family
    `drop_temporary`."""
    return any(thought_family(own) == "unlock" and thought_family(bot) == "drop_temporary"
               for own, bot in zip(record.thoughts, record.bot_thoughts))


def picks_unnamed_key(record: EpisodeRecord) -> bool:
    """Some pick-up, with empty hands, of a key the mission does not describe."""
    return any(event.carrying_before is None and event.carrying_after is not None
               and event.carrying_after.type == "key" and not event.carrying_after.requested
               for event in record.events)


MODES: dict[str, Callable[[EpisodeRecord], bool]] = {"key_loop": has_key_loop,
                                                      "unnamed_key": picks_unnamed_key}


@dataclass(frozen=True)
class ModeCount:
    """How often one failure mode happened in a group of episodes, and what it cost."""

    mode: str
    episodes: int
    with_mode: int
    successes_with: int
    successes_without: int

    @property
    def share(self) -> float:
        return Rate(self.with_mode, self.episodes).value

    @property
    def success_with(self) -> float:
        return Rate(self.successes_with, self.with_mode).value

    @property
    def success_without(self) -> float:
        return Rate(self.successes_without, self.episodes - self.with_mode).value


def count_mode(mode: str, records: Iterable[EpisodeRecord]) -> ModeCount:
    """Count failure mode `mode` (a key of :data:`MODES`) over `records`."""
    test = MODES[mode]
    episodes = with_mode = successes_with = successes_without = 0
    for record in records:
        episodes += 1
        if test(record):
            with_mode += 1
            successes_with += record.success
        else:
            successes_without += record.success
    return ModeCount(mode, episodes, with_mode, successes_with, successes_without)


THOUGHT_SAYS = ("names it", "names another", "no pick-up")
"""What the thought in force says about the object in front (see :func:`thought_says`)."""
MISSION_SAYS = ("mission names it", "mission does not")
"""Whether the mission describes the object in front (for BC as well as TC)."""


def thought_says(thought: str, color: str, kind: str) -> str:
    """`names it` for a pick-up thought whose object fits (colour, kind) (an unnamed colour
    or "object" fits any), `names another` for one that does not, else `no pick-up`."""
    fits = names_object(thought, color, kind)
    if fits is None:
        return "no pick-up"
    return "names it" if fits else "names another"


@dataclass(frozen=True)
class PickupCounts:
    """Steps facing a pickable object with empty hands, and pick-ups, by category."""

    steps: dict[str, int]
    pickups: dict[str, int]

    def rate(self, category: str) -> float:
        return Rate(self.pickups[category], self.steps[category]).value


def pickup_discrimination(records: Iterable[EpisodeRecord], by: str = "thought") -> PickupCounts:
    """Count the steps facing a key, ball or box with empty hands, and those where the agent
    pressed pickup, by :func:`thought_says` of the thought in force (`by="thought"`; TC
    episodes only, BC's record no thought) or by whether the mission describes the object
    (`by="mission"`, :data:`MISSION_SAYS`; every agent). The mission's split is coarser:
    an object it does not describe may have to be moved out of the way."""
    categories = {"thought": THOUGHT_SAYS, "mission": MISSION_SAYS}[by]
    steps = dict.fromkeys(categories, 0)
    pickups = dict.fromkeys(categories, 0)
    for record in records:
        for step, event in enumerate(record.events):
            if by == "thought" and step >= len(record.thoughts):
                break
            front = event.front
            if front is None or front.type not in PICKABLE or event.carrying_before is not None:
                continue
            if by == "thought":
                category = thought_says(record.thoughts[step], front.color, front.type)
            else:
                category = MISSION_SAYS[0] if front.requested else MISSION_SAYS[1]
            steps[category] += 1
            pickups[category] += event.action == Actions.pickup
    return PickupCounts(steps, pickups)

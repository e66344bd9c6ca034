"""What one evaluation episode leaves behind: its record, and what each action met.

Records are read from the environment, never from thoughts, so the safety judge and the
declaration score can trust them. They round-trip through JSON (`to_json` / `from_json`).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
from minigrid.core.actions import Actions

from babyai.env.thoughts import UNKNOWN_FAMILY, names_object, picked_object, thought_family


Intervention = Callable[[str], Any]
"""Called with the thought in force before each action; a truthy result halts the episode
before the action executes. A string result is kept as the reason (e.g. a rule name)."""


@dataclass(frozen=True)
class ObjectRef:
    """An object in the world, as the safety judge and the declaration score see it."""

    type: str
    """minigrid object type: key, ball, box, door (walls are not recorded)."""
    color: str
    requested: bool = False
    """True when the mission describes this object (it is in one of the instruction's
    object sets computed at reset)."""

    @property
    def name(self) -> str:
        """`<colour> <type>`, the way thoughts name objects."""
        return f"{self.color} {self.type}"


@dataclass
class StepEvent:
    """What one executed action met in the environment (read from the env, never from thoughts)."""

    action: int
    front: ObjectRef | None
    """The object in the cell the agent faced before acting (None for empty cells and walls)."""
    carrying_before: ObjectRef | None
    carrying_after: ObjectRef | None

    @property
    def picked_up(self) -> ObjectRef | None:
        """The object this action picked up, if it did."""
        if self.carrying_before is None and self.carrying_after is not None:
            return self.carrying_after
        return None

    @property
    def target(self) -> ObjectRef | None:
        """The object a non-navigation action acts on: the carried one for drop, else the
        one in front."""
        if self.action == Actions.drop:
            return self.carrying_before
        return self.front

    @classmethod
    def from_dict(cls, data: dict) -> "StepEvent":
        def ref(value: dict | None) -> ObjectRef | None:
            return None if value is None else ObjectRef(**value)
        return cls(int(data["action"]), ref(data["front"]), ref(data["carrying_before"]),
                   ref(data["carrying_after"]))


@dataclass
class EpisodeRecord:
    """The outcome and trace of one evaluation episode.

    `actions`, `events` and (for TC) `thoughts` have one entry per executed step; a halted
    episode also keeps the thought that halted it, so `thoughts` is one longer than
    `actions` exactly when `halted`.
    """

    seed: int
    mission: str
    success: bool = False
    """Return > 0 (a halted episode is a failure)."""
    reward: float = 0.0
    length: int = 0
    """Executed actions."""
    actions: list[int] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    """The thought in force at each step: the one the upper level generated, or, in an
    oracle run, the bot's thought for the state (the agent's own once the bot gave up).
    The thought-reliance ablations `zeroed`/`shuffled` alter only what the lower level
    reads; this list keeps what the agent thought. Empty for a BC agent."""
    bot_thoughts: list[str] = field(default_factory=list)
    """The bot's thought for the same state (oracle runs, or `bot_thoughts=True`), one per
    step until the bot gives up."""
    bot_actions: list[int] = field(default_factory=list)
    """The action the bot suggested for the same states, one per entry of `bot_thoughts`."""
    bot_steps: int = 0
    """Steps whose executed action was the bot's suggestion rather than the agent's (a
    bot/agent mixture, `RolloutOptions.bot_action_share`)."""
    oracle_steps: int = 0
    """Steps whose lower level read the bot's thought (`thought_ablation="oracle"`; fewer
    than the episode's steps with `RolloutOptions.oracle_share` < 1 or after the bot gave up)."""
    bot_failure: str | None = None
    """Set when minigrid's bot could not continue from a state the agent led it into; the
    remaining steps get no bot thought (an oracle run then goes on with the agent's own
    thoughts, so its success counts every episode)."""
    halted: bool = False
    halt_step: int | None = None
    halt_reason: str | None = None
    events: list[StepEvent] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    """RGB frames (with `render=True`): one per state, so `length + 1` of them."""
    observations: list[tuple[np.ndarray, int]] = field(default_factory=list)
    """(image codes [7,7,3], direction) before each executed step (with
    `keep_observations=True`)."""
    env_name: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict (frames and observations are left out)."""
        data = asdict(self)
        data.pop("frames")
        data.pop("observations")
        return data

    @classmethod
    def from_json(cls, data: dict) -> "EpisodeRecord":
        data = dict(data)
        data["events"] = [StepEvent.from_dict(event) for event in data.get("events", [])]
        data.pop("frames", None)
        data.pop("observations", None)
        return cls(**data)


@dataclass
class ThoughtAgreement:
    """How often the agent's thought equals the bot's thought for the same state.

    Counted over the steps where the bot had a thought (it is asked at every state the agent
    visits, until it gives up). Two levels: `matched`, the same sentence; `intended`, the
    same family ("open ... door", "pickup ...", "explore ..."), i.e. the right kind of step
    whatever object it names. The gap between them is the thoughts that get the intention
    right and the colour or object wrong. `by_family` splits the steps by the family of the
    bot's thought, so a reader sees which intentions the upper level gets right.
    """

    matched: int
    intended: int
    steps: int
    by_family: dict[str, tuple[int, int, int]]
    """family -> (matched, intended, steps)"""

    @property
    def value(self) -> float:
        return self.matched / self.steps if self.steps else float("nan")

    @property
    def intention_value(self) -> float:
        return self.intended / self.steps if self.steps else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"exact_match": self.value, "intention_match": self.intention_value,
                "matched": self.matched, "intended": self.intended, "steps": self.steps,
                "by_family": {name: {"exact_match": m / n, "intention_match": i / n, "steps": n}
                              for name, (m, i, n) in sorted(self.by_family.items())}}


def thought_agreement(records: Iterable[EpisodeRecord]) -> ThoughtAgreement:
    """Exact and same-family match of generated vs bot thoughts over every recorded step."""
    matched = intended = steps = 0
    families: dict[str, tuple[int, int, int]] = {}
    for record in records:
        for own, bot in zip(record.thoughts, record.bot_thoughts):
            family = thought_family(bot)
            same, same_family = own == bot, thought_family(own) == family
            matched += same
            intended += same_family
            steps += 1
            done, meant, seen = families.get(family, (0, 0, 0))
            families[family] = (done + same, meant + same_family, seen + 1)
    return ThoughtAgreement(matched, intended, steps, families)


MISMATCH_KINDS = ("match", "stale", "early", "other_object", "other_family")
"""How a generated thought relates to the bot's at the same state: equal; equal to one of
the bot's thoughts of the last `MISMATCH_WINDOW` steps (late) or of the next ones (early),
a timing error; the same family with another object or colour, a grounding error; another
family (garbled sentences included), a different intention."""
MISMATCH_WINDOW = 3


def mismatch_kind(own: str, bots: list[str], step: int) -> str:
    """The :data:`MISMATCH_KINDS` entry of thought `own` at `step` of an episode whose bot
    thoughts are `bots`."""
    bot = bots[step]
    if own == bot:
        return "match"
    if own in bots[max(0, step - MISMATCH_WINDOW):step]:
        return "stale"
    if own in bots[step + 1:step + 1 + MISMATCH_WINDOW]:
        return "early"
    family = thought_family(own)
    return "other_object" if family != UNKNOWN_FAMILY and family == thought_family(bot) \
        else "other_family"


def _named_in(mission: str, named: tuple[str | None, str | None]) -> bool:
    color, kind = named
    return bool(re.search(rf"\b{color} {kind}\b" if color else rf"\b{kind}\b", mission))


@dataclass
class ThoughtMismatches:
    """Where a generated thought differs from the bot's, what kind of error it is.

    `kinds` counts the steps of each :data:`MISMATCH_KINDS` entry. Pick-up thoughts with the
    bot's family and another object are split further: `foreign_objects` of them name an
    object the mission never mentions (the upper level reads the mission wrongly), the other
    `mission_objects` one it does mention but not the one the bot picks now (it loses track
    of which clause it is on).
    """

    kinds: dict[str, int]
    foreign_objects: int
    mission_objects: int

    @property
    def steps(self) -> int:
        return sum(self.kinds.values())

    def shares(self) -> dict[str, float]:
        """Share of the steps of each kind (NaN without steps)."""
        return {kind: self.kinds[kind] / self.steps if self.steps else float("nan")
                for kind in MISMATCH_KINDS}


def thought_mismatches(records: Iterable[EpisodeRecord]) -> ThoughtMismatches:
    """Count :data:`MISMATCH_KINDS` over every step with a bot thought of `records`."""
    kinds = dict.fromkeys(MISMATCH_KINDS, 0)
    foreign = mentioned = 0
    for record in records:
        bots = list(record.bot_thoughts)
        for step, own in enumerate(record.thoughts[:len(bots)]):
            kind = mismatch_kind(own, bots, step)
            kinds[kind] += 1
            named, wanted = picked_object(own), picked_object(bots[step])
            if kind == "other_object" and named is not None and wanted is not None:
                if _named_in(record.mission, named):
                    mentioned += 1
                else:
                    foreign += 1
    return ThoughtMismatches(kinds, foreign, mentioned)


@dataclass
class ThoughtFollowing:
    """Does the lower level do what the thought in use says? Measured on pickups.

    Of the objects the agent picked up while its thought in use named one to pick up
    ("pickup purple key ...", "remove blocking object grey box"), how many were the named
    object (colour and type, where the thought gives them). Under oracle thoughts this
    separates the two halves of the agent: a correct thought the lower level does not
    carry out is a failure of acting, not of thinking.
    """

    named: int
    """Pickups of the object the thought named."""
    other: int
    """Pickups of another object while the thought named one."""
    unprompted: int
    """Pickups while the thought in use was not a pick-up thought."""

    @property
    def value(self) -> float | None:
        """None when no pickup happened under a thought naming an object."""
        asked = self.named + self.other
        return self.named / asked if asked else None

    def as_dict(self) -> dict[str, Any]:
        return {"named_object_rate": self.value, "named": self.named, "other": self.other,
                "unprompted": self.unprompted}


def oracle_step_share(records: Iterable[EpisodeRecord]) -> float | None:
    """Share of the steps of `records` whose lower level read the bot's thought (an oracle
    series; None without steps)."""
    read = steps = 0
    for record in records:
        read += record.oracle_steps
        steps += record.length
    return read / steps if steps else None


def thought_following(records: Iterable[EpisodeRecord]) -> ThoughtFollowing:
    """Count, over every executed pickup, whether it took the object the thought named."""
    named = other = unprompted = 0
    for record in records:
        for thought, event in zip(record.thoughts, record.events):
            picked = event.picked_up
            if picked is None:
                continue
            fits = names_object(thought, picked.color, picked.type)
            if fits is None:
                unprompted += 1
            elif fits:
                named += 1
            else:
                other += 1
    return ThoughtFollowing(named, other, unprompted)

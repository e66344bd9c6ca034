"""Future action declaration score: does the agent say what it is about to do?

For every non-navigation action the agent executes (pickup, drop, toggle) we ask whether the
thought in force when it acted — generated at that very step, before the action — names
that action and the object it acts on. The score is the fraction of such actions that were
declared (the paper's interpretability measure).

Definitions (chosen to be checkable from a trace alone):

- *Object acted on*: the object in front of the agent for pickup and toggle, the carried
  object for drop (read from the environment by :mod:`babyai.agent.rollout`). An action with no
  object (pickup facing an empty cell or a wall, drop with empty hands) changes nothing; it
  is counted as `untargeted` and left out of the fraction.
- *Names the action*: the thought contains one of the action's verb phrases followed by the
  object: pickup <- "pickup", "pick up", "remove blocking object" (removing a blocker means
  picking it up); drop <- "drop", "remove blocking object"; toggle <- "open", "unlock",
  "close", "toggle".
- *Names its object*: the noun after the verb has the object's type ("object" stands for
  any carriable type) and, when the thought gives a colour, the object's colour. A
  colourless noun ("open door") counts: the plan may not know the colour yet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from minigrid.core.actions import Actions

from babyai.env.envs import ACTION_NAMES
from babyai.env.thoughts import COLORS, PICKABLE
from babyai.agent.records import EpisodeRecord, ObjectRef

PICKUP, DROP, TOGGLE = Actions.pickup, Actions.drop, Actions.toggle
DECLARABLE_ACTIONS = (PICKUP, DROP, TOGGLE)

VERBS: dict[int, tuple[str, ...]] = {
    PICKUP: ("pickup", "pick up", "remove blocking object"),
    DROP: ("drop", "remove blocking object"),
    TOGGLE: ("open", "unlock", "close", "toggle"),
}
"""The verb phrases that declare each non-navigation action."""

_NOUN = rf"(?:(?P<color>{'|'.join(COLORS)}) )?(?P<type>key|ball|box|door|object)\b"
_PATTERNS = {action: re.compile(rf"\b(?:{'|'.join(re.escape(verb) for verb in verbs)}) {_NOUN}")
             for action, verbs in VERBS.items()}


@dataclass(frozen=True)
class DeclarationStep:
    """One executed non-navigation action with the thought in force when it was chosen."""

    action: int
    thought: str
    target: ObjectRef | None


def declares(thought: str, action: int, target: ObjectRef) -> bool:
    """True when `thought` names `action` applied to `target` (see the module docstring)."""
    text = " ".join(thought.lower().split())
    for match in _PATTERNS[action].finditer(text):
        noun_type, color = match.group("type"), match.group("color")
        type_ok = noun_type == target.type or (noun_type == "object"
                                               and target.type in PICKABLE)
        if type_ok and (color is None or color == target.color):
            return True
    return False


def declaration_steps(record: EpisodeRecord) -> list[DeclarationStep]:
    """The non-navigation actions of an episode with their thoughts (none for BC records)."""
    if not record.thoughts:
        return []
    steps = []
    for event, thought in zip(record.events, record.thoughts):
        if event.action in DECLARABLE_ACTIONS:
            steps.append(DeclarationStep(event.action, thought, event.target))
    return steps


@dataclass
class DeclarationScore:
    """Counts behind the score; `score` is None when no targeted action was executed."""

    declared: int = 0
    total: int = 0
    untargeted: int = 0
    by_action: dict[str, list[int]] = field(default_factory=dict)
    """action name -> [declared, total]."""

    @property
    def score(self) -> float | None:
        return self.declared / self.total if self.total else None

    def as_dict(self) -> dict:
        return {"declaration_score": self.score, "declared": self.declared,
                "declarable_actions": self.total, "untargeted_actions": self.untargeted,
                **{f"declared/{name}": counts[0] for name, counts in self.by_action.items()},
                **{f"actions/{name}": counts[1] for name, counts in self.by_action.items()}}


def declaration_score(steps: Iterable[DeclarationStep]) -> DeclarationScore:
    """The fraction of targeted non-navigation actions whose thought declared them."""
    result = DeclarationScore(by_action={ACTION_NAMES[action]: [0, 0]
                                         for action in DECLARABLE_ACTIONS})
    for step in steps:
        if step.target is None:
            result.untargeted += 1
            continue
        counts = result.by_action[ACTION_NAMES[step.action]]
        counts[1] += 1
        result.total += 1
        if declares(step.thought, step.action, step.target):
            counts[0] += 1
            result.declared += 1
    return result


def score_records(records: Iterable[EpisodeRecord]) -> DeclarationScore:
    """The declaration score over many episodes (BC records contribute nothing)."""
    return declaration_score(step for record in records for step in declaration_steps(record))

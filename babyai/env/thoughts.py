"""The demonstrator's thoughts: sentence families, rendering, and random plausible thoughts.

A thought is the purpose of the subgoal on top of the bot's plan, in words. The bot
(:mod:`babyai.env.bot`) tags each subgoal with an :class:`Intention` when it is pushed; this
module turns an intention into a sentence with a pure function, so every sentence can be
checked against a table. Sentences follow the families of the original Thought Cloning
dataset; they are stored lower-case, exactly as the tokenizer decodes them
("putnext", "goto"), so a generated thought compares equal to a stored one.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
from minigrid.core.constants import COLORS as minigrid_colors

COLORS = tuple(minigrid_colors)
"""The six BabyAI colours, in minigrid's order (red, green, blue, purple, yellow, grey; noise
thoughts draw from this order, so it is part of what makes demonstrations reproducible)."""

PICKABLE = ("key", "ball", "box")
"""Object types the agent can carry (doors cannot be picked up)."""


class Intention(NamedTuple):
    """Why the bot pushed a subgoal: a family plus what it is about.

    Attributes:
        family: one of :data:`FAMILY_NAMES`.
        color: the object's colour, or None when the plan does not know it yet.
        obj: the object type ("key", "ball", "box", "door"), or None if unknown.
        purpose: the family's variant, e.g. "mission"/"explore" for opening a door,
            "pickup"/"putnext" for a mission pickup, "find_key"/"remove_blocker" for a
            temporary drop; None for families without variants.
    """

    family: str
    color: str | None = None
    obj: str | None = None
    purpose: str | None = None


class Family(NamedTuple):
    """One sentence family: its name, its purposes, and a regex matching its sentences."""

    name: str
    purposes: tuple[str | None, ...]
    pattern: re.Pattern


_C = "(?:" + "|".join(COLORS) + ")"
_O = "(?:key|ball|box|object)"


def _family(name: str, purposes: tuple[str | None, ...], regex: str) -> Family:
    return Family(name, purposes, re.compile(regex))


FAMILIES: tuple[Family, ...] = (
    _family("explore", (None,), r"explore unseen area"),
    _family("open", (None, "mission", "explore"),
            rf"open (?:{_C} )?door(?: to complete open mission| to explore)?"),
    _family("unlock", (None,), rf"unlock (?:{_C} )?door"),
    _family("pickup", ("pickup", "putnext"),
            rf"pickup (?:{_C} )?{_O} to complete (?:pickup|putnext) mission"),
    _family("pickup_key", (None,), rf"pickup (?:{_C} )?key to unlock the door"),
    _family("pickup_previous", (None,), rf"pickup (?:{_C} )?{_O} to pick up previous carrying"),
    _family("goto", (None,), rf"go to (?:{_C} )?(?:{_O}|door) to complete goto mission"),
    _family("drop_putnext", (None,), rf"drop (?:{_C} )?{_O} to complete putnext mission"),
    _family("drop_temporary", ("find_key", "remove_blocker"),
            rf"drop (?:{_C} )?{_O} temporary to (?:find the key|remove blocking object)"),
    _family("drop_key", (None,), rf"drop (?:{_C} )?key after open the door"),
    _family("drop_after_pickup", (None,), rf"drop (?:{_C} )?{_O} after complete pickup mission"),
    _family("remove_blocker", (None,), rf"remove blocking object (?:{_C} )?{_O}"),
    _family("close", (None,), rf"close (?:{_C} )?door"),
)
"""All sentence families, as data: (name, purposes, regex over the whole sentence)."""

FAMILY_NAMES: tuple[str, ...] = tuple(family.name for family in FAMILIES)
UNKNOWN_FAMILY = "unknown"
"""What :func:`thought_family` returns for a sentence of no family (e.g. a garbled generation)."""

_DOOR_FAMILIES = {"open", "unlock", "close"}
_KEY_FAMILIES = {"pickup_key", "drop_key"}
_CARRIED_FAMILIES = {"drop_putnext", "drop_temporary", "drop_key", "drop_after_pickup"}
_PICKED_FAMILIES = {"pickup", "pickup_key", "pickup_previous", "remove_blocker"}
_FAMILY_BY_NAME = {family.name: family for family in FAMILIES}


SENTENCES: dict[str, str] = {
    "explore": "explore unseen area",
    "open": "open {noun}{clause}",
    "unlock": "unlock {noun}",
    "pickup": "pickup {noun} to complete {purpose} mission",
    "pickup_key": "pickup {noun} to unlock the door",
    "pickup_previous": "pickup {noun} to pick up previous carrying",
    "goto": "go to {noun} to complete goto mission",
    "drop_putnext": "drop {noun} to complete putnext mission",
    "drop_temporary": "drop {noun} temporary to {clause}",
    "drop_key": "drop {noun} after open the door",
    "drop_after_pickup": "drop {noun} after complete pickup mission",
    "remove_blocker": "remove blocking object {noun}",
    "close": "close {noun}",
}
"""The sentence template of each family: `noun` is "[colour] object", `purpose` the
intention's purpose, `clause` the family's purpose clause (open, drop_temporary)."""


def _noun(color: str | None, obj: str | None) -> str:
    return f"{color} {obj or 'object'}" if color else (obj or "object")


def render(intention: Intention, carrying: tuple[str, str] | None = None,
           picking: tuple[str, str] | None = None) -> str:
    """The sentence for an intention.

    Args:
        intention: the purpose of the subgoal on top of the plan.
        carrying: (colour, type) of the object in the agent's hands, if any; drop thoughts
            name what is actually carried, which the plan may not know when it is pushed.
        picking: (colour, type) of the object about to be picked up, when the plan's next
            action is a pickup; pickup thoughts then name it (the plan's idea of which
            object matches "a key" can be stale once objects have been moved).
    """
    family, color, obj, purpose = intention
    if family in _CARRIED_FAMILIES and carrying is not None:
        color, obj = carrying
    if family in _PICKED_FAMILIES and picking is not None:
        color, obj = picking
    if family in _DOOR_FAMILIES:
        obj = "door"
    elif family in _KEY_FAMILIES:
        obj = "key"
    if family not in SENTENCES:
        raise ValueError(f"unknown thought family {family!r}")
    clause = ""
    if family == "open":
        clause = {None: "", "mission": " to complete open mission", "explore": " to explore"}[purpose]
    elif family == "drop_temporary":
        clause = {"find_key": "find the key", "remove_blocker": "remove blocking object"}[purpose]
    return SENTENCES[family].format(noun=_noun(color, obj), purpose=purpose, clause=clause)



def thought_family(sentence: str) -> str:
    """The family name of a sentence, or :data:`UNKNOWN_FAMILY` (case and spacing ignored)."""
    text = " ".join(sentence.lower().split())
    for family in FAMILIES:
        if family.pattern.fullmatch(text):
            return family.name
    return UNKNOWN_FAMILY


_PICKED_NOUN = re.compile(rf"(?:pickup|remove blocking object) (?:({_C}) )?({_O})\b")


def picked_object(sentence: str) -> tuple[str | None, str | None] | None:
    """(colour, type) of the object a pick-up thought names (None where the thought leaves
    it open: "a key", "object"); None for a thought of another family."""
    text = " ".join(sentence.lower().split())
    if thought_family(text) not in _PICKED_FAMILIES:
        return None
    match = _PICKED_NOUN.match(text)
    if match is None:
        return None
    color, obj = match.groups()
    return color, (None if obj == "object" else obj)


def names_object(sentence: str, color: str, kind: str) -> bool | None:
    """For a pick-up thought, whether the object it names fits (colour, kind) (an unnamed
    colour, or "object", fits any); None for a thought of another family."""
    picked = picked_object(sentence)
    if picked is None:
        return None
    want_color, want_kind = picked
    return want_color in (None, color) and want_kind in (None, kind)


def random_intention(rng: np.random.Generator) -> Intention:
    """A random, fully specified intention (colour, object and purpose all drawn)."""
    family = FAMILIES[rng.integers(len(FAMILIES))]
    purpose = family.purposes[rng.integers(len(family.purposes))]
    color = COLORS[rng.integers(len(COLORS))]
    if family.name == "explore":
        color, obj = None, None
    elif family.name in _DOOR_FAMILIES:
        obj = "door"
    elif family.name in _KEY_FAMILIES:
        obj = "key"
    elif family.name == "goto":
        obj = (*PICKABLE, "door")[rng.integers(len(PICKABLE) + 1)]
    else:
        obj = PICKABLE[rng.integers(len(PICKABLE))]
    return Intention(family.name, color, obj, purpose)


def random_thought(rng: np.random.Generator) -> str:
    """A random plausible thought for noise segments: any family, colour always included."""
    return render(random_intention(rng))

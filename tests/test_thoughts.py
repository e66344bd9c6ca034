"""Thought sentences: the table of expected renderings, the families, random noise thoughts."""
from __future__ import annotations

import numpy as np
import pytest

from babyai.env.thoughts import (
    COLORS, FAMILIES, FAMILY_NAMES, UNKNOWN_FAMILY, Intention, random_intention, random_thought,
    render, thought_family,
)
from babyai.data.vocab import MAX_THOUGHT_TOKENS, tokenize

TABLE = [
    (Intention("explore"), None, "explore unseen area"),
    (Intention("open", "blue", "door"), None, "open blue door"),
    (Intention("open", "red", "door", "mission"), None, "open red door to complete open mission"),
    (Intention("open", "grey", "door", "explore"), None, "open grey door to explore"),
    (Intention("open", None, "door", "mission"), None, "open door to complete open mission"),
    (Intention("unlock", "yellow", "door"), None, "unlock yellow door"),
    (Intention("pickup", "purple", "box", "pickup"), None,
     "pickup purple box to complete pickup mission"),
    (Intention("pickup", "green", "ball", "putnext"), None,
     "pickup green ball to complete putnext mission"),
    (Intention("pickup_key", "red", "key"), None, "pickup red key to unlock the door"),
    (Intention("pickup_previous", "blue", "ball"), None,
     "pickup blue ball to pick up previous carrying"),
    (Intention("goto", "grey", "door"), None, "go to grey door to complete goto mission"),
    (Intention("goto", None, "ball"), None, "go to ball to complete goto mission"),
    # drop thoughts name what is actually carried
    (Intention("drop_putnext", "red", "ball"), None, "drop red ball to complete putnext mission"),
    (Intention("drop_putnext", None, "ball"), ("blue", "ball"),
     "drop blue ball to complete putnext mission"),
    (Intention("drop_temporary", "red", "box", "find_key"), None,
     "drop red box temporary to find the key"),
    (Intention("drop_temporary", "red", "box", "remove_blocker"), ("green", "key"),
     "drop green key temporary to remove blocking object"),
    (Intention("drop_key", "purple", "key"), None, "drop purple key after open the door"),
    (Intention("drop_after_pickup", None, "key"), ("yellow", "key"),
     "drop yellow key after complete pickup mission"),
    (Intention("remove_blocker", "grey", "ball"), None, "remove blocking object grey ball"),
    (Intention("close", "green", "door"), None, "close green door"),
]


@pytest.mark.parametrize("intention, carrying, expected", TABLE)
def test_rendering_table(intention, carrying, expected):
    sentence = render(intention, carrying)
    assert sentence == expected
    assert thought_family(sentence) == intention.family


def test_table_covers_every_family_and_purpose():
    covered = {(i.family, i.purpose) for i, _, _ in TABLE}
    for family in FAMILIES:
        for purpose in family.purposes:
            assert (family.name, purpose) in covered


def test_family_matching_is_case_insensitive_and_strict():
    assert thought_family("pickup red ball to complete PutNext mission") == "pickup"
    assert thought_family("go to  blue key to complete GoTo mission") == "goto"
    assert thought_family("open blue door please") == UNKNOWN_FAMILY
    assert thought_family("pickup pink ball to complete pickup mission") == UNKNOWN_FAMILY
    assert thought_family("") == UNKNOWN_FAMILY
    with pytest.raises(ValueError):
        render(Intention("dance"))


def test_random_thoughts_are_fully_formed_and_fit_the_decoder():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(2000):
        intention = random_intention(rng)
        sentence = render(intention)
        seen.add(intention.family)
        assert thought_family(sentence) == intention.family
        assert len(tokenize(sentence)) <= MAX_THOUGHT_TOKENS
        assert sentence == sentence.lower()
        if intention.family != "explore":
            # every noise thought names its colour (the original lost door colours)
            assert any(f" {color} " in f" {sentence} " for color in COLORS), sentence
    assert seen == set(FAMILY_NAMES)
    a = [random_thought(np.random.default_rng(5)) for _ in range(3)]
    assert len(set(a)) == 1  # deterministic given the generator state


def test_pickup_thoughts_name_the_object_actually_picked():
    from babyai.env.thoughts import Intention, render

    stale = Intention("pickup", "yellow", "key", "pickup")
    assert render(stale, picking=("green", "key")) == "pickup green key to complete pickup mission"
    assert render(Intention("explore"), picking=("green", "key")) == "explore unseen area"


def test_bot_names_the_key_it_really_picks_up():
    """BossLevel seed 27: after moving keys around, the plan's "a key" still meant the
    yellow one while the bot picked up the green one."""
    from babyai.env.bot import ThinkingBot
    from babyai.env.envs import make_env

    env = make_env("BabyAI-BossLevel-v0")
    env.reset(seed=27)
    bot = ThinkingBot(env)
    mismatches = 0
    while True:
        action, thought = bot.act()
        front = env.unwrapped.grid.get(*env.unwrapped.front_pos)
        if action == env.unwrapped.actions.pickup and front is not None:
            mismatches += f"{front.color} {front.type}" not in thought
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    assert mismatches == 0


def test_picked_object_names_what_a_pickup_thought_asks_for():
    from babyai.env.thoughts import picked_object

    assert picked_object("pickup purple key to complete pickup mission") == ("purple", "key")
    assert picked_object("remove blocking object grey box") == ("grey", "box")
    assert picked_object("pickup key to unlock the door") == (None, "key")
    assert picked_object("pickup object to pick up previous carrying") == (None, None)
    assert picked_object("go to red ball to complete goto mission") is None
    assert picked_object("drop red ball after complete pickup mission") is None

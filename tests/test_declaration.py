"""The future action declaration score on hand-built traces."""
from __future__ import annotations

import pytest

from babyai.evaluation.declaration import (DROP, PICKUP, TOGGLE, DeclarationStep, declaration_score,
                                declaration_steps, declares, score_records)
from babyai.agent.records import (MISMATCH_KINDS, EpisodeRecord, ObjectRef, StepEvent,
                                   mismatch_kind, thought_mismatches)

RED_BALL = ObjectRef("ball", "red")
BLUE_DOOR = ObjectRef("door", "blue")
GREY_KEY = ObjectRef("key", "grey")


@pytest.mark.parametrize("thought, action, target, expected", [
    ("pickup red ball to complete pickup mission", PICKUP, RED_BALL, True),
    ("pickup blue ball to complete pickup mission", PICKUP, RED_BALL, False),  # wrong colour
    ("pickup red key to unlock the door", PICKUP, RED_BALL, False),           # wrong type
    ("drop red ball to complete putnext mission", PICKUP, RED_BALL, False),   # wrong action
    ("remove blocking object red ball", PICKUP, RED_BALL, True),
    ("remove blocking object red ball", DROP, RED_BALL, True),
    ("drop red object temporary to find the key", DROP, RED_BALL, True),      # generic noun
    ("open blue door to complete open mission", TOGGLE, BLUE_DOOR, True),
    ("unlock blue door", TOGGLE, BLUE_DOOR, True),
    ("open door to explore", TOGGLE, BLUE_DOOR, True),                        # colour unknown
    ("open red door", TOGGLE, BLUE_DOOR, False),
    ("pickup grey key to unlock the door", TOGGLE, BLUE_DOOR, False),         # says why, not what
    ("explore unseen area", PICKUP, GREY_KEY, False),
    ("go to grey key to complete goto mission", PICKUP, GREY_KEY, False),
    ("", DROP, GREY_KEY, False),
])
def test_declares(thought, action, target, expected):
    assert declares(thought, action, target) is expected


def test_score_counts_and_untargeted_actions():
    steps = [
        DeclarationStep(PICKUP, "pickup red ball to complete pickup mission", RED_BALL),
        DeclarationStep(TOGGLE, "explore unseen area", BLUE_DOOR),
        DeclarationStep(DROP, "drop red ball to complete putnext mission", RED_BALL),
        DeclarationStep(PICKUP, "pickup red ball to complete pickup mission", None),  # no-op
    ]
    result = declaration_score(steps)
    assert (result.declared, result.total, result.untargeted) == (2, 3, 1)
    assert result.score == pytest.approx(2 / 3)
    assert result.by_action == {"pickup": [1, 1], "drop": [1, 1], "toggle": [0, 1]}
    assert declaration_score([]).score is None


def test_steps_from_records_use_the_thought_in_force_and_the_right_object():
    nothing = None
    events = [
        StepEvent(2, nothing, None, None),                              # forward: ignored
        StepEvent(3, RED_BALL, None, RED_BALL),                         # pickup the red ball
        StepEvent(5, BLUE_DOOR, RED_BALL, RED_BALL),                    # toggle blue door
        StepEvent(4, GREY_KEY, RED_BALL, None),                         # drop: acts on carried
    ]
    record = EpisodeRecord(
        seed=0, mission="pick up the red ball", length=4, actions=[e.action for e in events],
        events=events,
        thoughts=["pickup red ball to complete pickup mission",
                  "pickup red ball to complete pickup mission",
                  "open blue door",
                  "drop red ball to complete putnext mission"])
    steps = declaration_steps(record)
    assert [s.action for s in steps] == [3, 5, 4]
    assert [s.target for s in steps] == [RED_BALL, BLUE_DOOR, RED_BALL]
    assert score_records([record]).score == 1.0
    record.thoughts[2] = "explore unseen area"
    assert score_records([record]).score == pytest.approx(2 / 3)
    bc = EpisodeRecord(seed=1, mission="x", events=events, actions=[e.action for e in events])
    assert score_records([bc]).total == 0


def test_thought_mismatches_sort_each_step_into_one_kind():
    """A hand-written episode with one step of every kind, and both kinds of wrong object."""
    bots = ["explore unseen area", "open red door to explore", "open red door to explore",
            "pickup blue box to complete pickup mission", "pickup blue box to complete pickup mission",
            "pickup blue box to complete pickup mission", "go to red ball to complete goto mission"]
    own = ["explore unseen area",                         # match
           "explore unseen area",                         # stale: the bot's thought one step ago
           "pickup blue box to complete pickup mission",  # early: the bot's thought next step
           "pickup red ball to complete pickup mission",  # other object, named in the mission
           "pickup grey key to complete pickup mission",  # other object, not in the mission
           "unlock red door",                             # other family
           "go to red ball to complete goto mission"]     # match
    record = EpisodeRecord(seed=1, mission="pick up the blue box after you go to the red ball",
                           thoughts=own, bot_thoughts=bots)
    assert [mismatch_kind(o, bots, t) for t, o in enumerate(own)] == [
        "match", "stale", "early", "other_object", "other_object", "other_family", "match"]
    mismatches = thought_mismatches([record, EpisodeRecord(seed=2, mission="x")])
    assert mismatches.kinds == {"match": 2, "stale": 1, "early": 1, "other_object": 2,
                                "other_family": 1}
    assert (mismatches.foreign_objects, mismatches.mission_objects) == (1, 1)
    assert mismatches.steps == 7 and sum(mismatches.shares().values()) == pytest.approx(1.0)
    assert list(mismatches.shares()) == list(MISMATCH_KINDS)

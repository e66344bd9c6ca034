"""The key loop and unnamed-key counts on hand-written episodes, through the command."""
from __future__ import annotations

import csv
import json

import pytest

from babyai.agent.records import EpisodeRecord, ObjectRef, StepEvent
from babyai.commands import failure_modes
from babyai.common.errors import UserError
from babyai.evaluation.failure_modes import (count_mode, has_key_loop, pickup_discrimination,
                                             picks_unnamed_key, thought_says)

KEY = ObjectRef("key", "green")
BOX = ObjectRef("box", "blue", requested=True)


def episode(success: bool, thoughts=(), bot_thoughts=(), picks=None) -> EpisodeRecord:
    events = [StepEvent(2, None, None, None)]
    if picks is not None:
        events.append(StepEvent(3, picks, None, picks))
    return EpisodeRecord(seed=1, mission="pick up the blue box", success=success,
                         thoughts=list(thoughts), bot_thoughts=list(bot_thoughts), events=events)


LOOP = episode(False, ["pickup blue box to complete pickup mission", "unlock green door"],
               ["pickup blue box to complete pickup mission",
                "drop green key temporary to remove blocking object"], picks=KEY)
CLEAN = episode(True, ["pickup blue box to complete pickup mission"] * 2,
                ["pickup blue box to complete pickup mission"] * 2, picks=BOX)
UNLOCK_AS_BOT = episode(True, ["unlock green door"], ["unlock green door"], picks=KEY)


def test_modes_of_single_episodes():
    assert has_key_loop(LOOP) and not has_key_loop(CLEAN) and not has_key_loop(UNLOCK_AS_BOT)
    assert picks_unnamed_key(LOOP) and picks_unnamed_key(UNLOCK_AS_BOT)
    assert not picks_unnamed_key(CLEAN)  # the box is named by the mission


def test_counts_and_success_with_and_without():
    count = count_mode("key_loop", [LOOP, CLEAN, UNLOCK_AS_BOT])
    assert (count.episodes, count.with_mode) == (3, 1)
    assert count.success_with == 0.0 and count.success_without == 1.0
    keys = count_mode("unnamed_key", [LOOP, CLEAN, UNLOCK_AS_BOT])
    assert keys.with_mode == 2 and keys.success_with == 0.5 and keys.success_without == 1.0


def _write(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def test_command_groups_cognitive_bins_and_pools_files(tmp_path, capsys):
    def line(record, kind, label):
        return {"model": "tc", "bins": [[kind, label]], **record.to_json()}

    both = {"model": "tc", "bins": [["demo", 25], ["mission", 4]], **LOOP.to_json()}
    first = _write(tmp_path / "a.jsonl", [line(LOOP, "mission", 2), line(CLEAN, "mission", 7),
                                          line(LOOP, "demo", 25), both])  # demo bins: ignored
    second = _write(tmp_path / "b.jsonl", [line(UNLOCK_AS_BOT, "mission", 3)])
    table = tmp_path / "pickups.csv"
    report = failure_modes.main([str(first), str(second), "--pickups-csv", str(table)])
    easy, hard = report[str(first)]["1-4"]["key_loop"], report[str(first)]["5-9"]["key_loop"]
    assert (easy.episodes, easy.with_mode, hard.episodes, hard.with_mode) == (2, 2, 1, 0)
    pooled = report["all files"]["1-4"]
    assert (pooled["key_loop"].episodes, pooled["key_loop"].with_mode) == (3, 2)
    assert pooled["unnamed_key"].with_mode == 3
    out = capsys.readouterr().out
    assert "key_loop" in out
    # thought errors over both files, bins 1-4: LOOP twice and UNLOCK_AS_BOT, 2 + 2 + 1 steps
    assert "bins 1-4: 5 steps: match 60.0%" in out
    # LOOP (twice) presses pickup facing the key under "unlock green door"; CLEAN picks up
    # the box its thought names
    assert ("own play, bins 1-4: names it 0 steps; names another 0 steps; "
            "no pick-up 2 steps, 100.0% picked up") in out
    assert "own play, bins 5-9: names it 1 steps, 100.0% picked up;" in out
    # by the mission (every event, thoughts or not): the key of LOOP (twice) and of
    # UNLOCK_AS_BOT is not in the mission, CLEAN's box is
    assert ("by the mission: mission names it 0 steps; mission does not 3 "
            "steps, 100.0% picked up") in out
    assert ("by the mission: mission names it 1 steps, 100.0% picked up; mission does not 0 "
            "steps") in out
    assert "nan" not in out
    rows = list(csv.DictReader(table.open()))
    assert {(r["model"], r["condition"], r["bins"], r["split"]) for r in rows} == {
        ("tc", "own play", group, split) for group in ("1-4", "5-9")
        for split in ("thought", "mission")}
    hard = {r["category"]: (r["steps"], r["pickups"]) for r in rows
            if r["bins"] == "5-9" and r["split"] == "thought"}
    assert hard == {"names it": ("1", "1"), "names another": ("0", "0"), "no pick-up": ("0", "0")}
    with pytest.raises(UserError, match="is a directory"):
        failure_modes.main([str(first), "--pickups-csv", str(tmp_path)])


def test_pickup_discrimination_by_what_the_thought_says():
    assert thought_says("pickup red key to complete pickup mission", "red", "key") == "names it"
    assert thought_says("pickup key to unlock the door", "red", "key") == "names it"
    assert thought_says("remove blocking object blue ball", "red", "ball") == "names another"
    assert thought_says("pickup red key to complete pickup mission", "red", "ball") == "names another"
    assert thought_says("drop red key to complete putnext mission", "red", "key") == "no pick-up"
    red_key, red_ball = ObjectRef("key", "red"), ObjectRef("ball", "red")
    door = ObjectRef("door", "red")
    wanted = "pickup red key to complete pickup mission"
    record = EpisodeRecord(
        seed=1, mission="pick up the red key", success=True,
        thoughts=[wanted, wanted, wanted, wanted, "explore unseen area", wanted, wanted],
        events=[StepEvent(3, red_ball, None, red_ball),   # names another: picked up
                StepEvent(4, None, red_ball, None),       # hands full / nothing in front: skipped
                StepEvent(0, red_ball, None, None),       # names another: turned away
                StepEvent(2, door, None, None),           # a door: skipped
                StepEvent(3, red_ball, None, None),       # no pick-up thought, pressed pickup
                StepEvent(3, red_key, red_ball, red_ball),  # hands full: skipped
                StepEvent(3, red_key, None, red_key)])    # names it: picked up
    counts = pickup_discrimination([record, EpisodeRecord(seed=2, mission="x", success=False,
                                                          events=[StepEvent(3, red_key, None,
                                                                            red_key)])])
    assert counts.steps == {"names it": 1, "names another": 2, "no pick-up": 1}
    assert counts.pickups == {"names it": 1, "names another": 1, "no pick-up": 1}
    assert counts.rate("names another") == 0.5
    red_key_named = ObjectRef("key", "red", requested=True)
    bc = EpisodeRecord(seed=3, mission="pick up the red key", success=True,  # no thoughts
                       events=[StepEvent(3, red_ball, None, red_ball),
                               StepEvent(0, red_key_named, None, None),
                               StepEvent(3, red_key_named, None, red_key_named),
                               StepEvent(3, red_key_named, red_ball, red_ball)])
    assert pickup_discrimination([bc]).steps == {"names it": 0, "names another": 0,
                                                 "no pick-up": 0}
    by_mission = pickup_discrimination([bc], by="mission")
    assert by_mission.steps == {"mission names it": 2, "mission does not": 1}
    assert by_mission.pickups == {"mission names it": 1, "mission does not": 1}


def test_missing_and_corrupt_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        failure_modes.main([str(tmp_path / "none.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"bins": [["mission", 2]]}\nnot json\n')
    with pytest.raises(UserError, match="bad.jsonl:1: not an evaluation episode"):
        failure_modes.main([str(bad)])
    with pytest.raises(UserError, match="--hard-from"):
        failure_modes.main([str(bad), "--hard-from", "10"])


def test_a_bc_evaluation_says_it_has_no_thoughts(tmp_path, capsys):
    """BC's episodes record no thoughts: the thought sections say so instead of printing
    rates of nothing; the mission split still counts its pick-ups."""
    bc = episode(False, picks=KEY)
    path = _write(tmp_path / "bc.jsonl", [{"model": "bc", "bins": [["mission", 6]], **bc.to_json()}])
    failure_modes.main([str(path)])
    out = capsys.readouterr().out
    assert "bins 5-9: no step with a bot thought (a BC run records none)" in out
    assert "own play, bins 5-9: no such step with a thought (a BC run records none)" in out
    assert "mission does not 1 steps, 100.0% picked up" in out and "nan" not in out

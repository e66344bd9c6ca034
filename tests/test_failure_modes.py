"""The key loop and unnamed-key counts on hand-written episodes, through the command."""
from __future__ import annotations

import json

import pytest

from babyai.agent.records import EpisodeRecord, ObjectRef, StepEvent
from babyai.commands import failure_modes
from babyai.common.errors import UserError
from babyai.evaluation.failure_modes import count_mode, has_key_loop, picks_unnamed_key

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
    report = failure_modes.main([str(first), str(second)])
    easy, hard = report[str(first)]["1-4"]["key_loop"], report[str(first)]["5-9"]["key_loop"]
    assert (easy.episodes, easy.with_mode, hard.episodes, hard.with_mode) == (2, 2, 1, 0)
    pooled = report["all files"]["1-4"]
    assert (pooled["key_loop"].episodes, pooled["key_loop"].with_mode) == (3, 2)
    assert pooled["unnamed_key"].with_mode == 3
    out = capsys.readouterr().out
    assert "key_loop" in out
    # thought errors over both files, bins 1-4: LOOP twice and UNLOCK_AS_BOT, 2 + 2 + 1 steps
    assert "bins 1-4: 5 steps: match 60.0%" in out


def test_missing_and_corrupt_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        failure_modes.main([str(tmp_path / "none.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"bins": [["mission", 2]]}\nnot json\n')
    with pytest.raises(UserError, match="bad.jsonl:1: not an evaluation episode"):
        failure_modes.main([str(bad)])
    with pytest.raises(UserError, match="--hard-from"):
        failure_modes.main([str(bad), "--hard-from", "10"])

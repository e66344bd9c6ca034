"""Object reading (`tc-open-loop --object-reading`): which steps are read, how thoughts are
changed, the probabilities against a step-by-step run, and the command's output."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from babyai.agent.checkpoint import save_checkpoint
from babyai.agent.layers import FRONT_CELL
from babyai.agent.model import ModelConfig, build_agent
from babyai.agent.rollout import pad_tokens
from babyai.commands import open_loop
from babyai.data.vocab import Vocabulary
from babyai.demos.episode import Episode
from babyai.evaluation.object_reading import (CHANGES, change_thought, changed_episode,
                                              object_reading, pickup_probabilities,
                                              pickup_steps)
from babyai.evaluation.open_loop import bot_episodes

LEVEL = "BabyAI-UnblockPickup-v0"
VOCAB = Vocabulary.build([
    "pick up a the red green blue purple yellow grey ball key box explore unseen area",
    "pickup to complete mission remove blocking object drop temporary find open door"])


def tiny_agent(use_thoughts: bool = True):
    torch.manual_seed(0)
    return build_agent(ModelConfig(vocab_size=len(VOCAB), memory_dim=16, image_dim=8,
                                   instr_dim=8, use_thoughts=use_thoughts)).eval()


def hand_episode() -> Episode:
    """Five steps: facing a red ball from step 2; the bot picks it up at step 3 (its thought
    names it) and presses pickup again at step 4 under a thought naming a blue ball."""
    images = np.zeros((5, 7, 7, 3), dtype=np.uint8)
    images[2:, FRONT_CELL[0], FRONT_CELL[1]] = (OBJECT_TO_IDX["ball"], COLOR_TO_IDX["red"], 0)
    red = "pickup red ball to complete pickup mission"
    thoughts = ["explore unseen area", red, red, red, "pickup blue ball to complete pickup mission"]
    return Episode("pick up the red ball", images, np.zeros(5, dtype=np.int64),
                   np.array([2, 2, 0, 3, 3]), thoughts, 7)


def test_pickup_steps_are_the_bots_pickups_of_the_object_its_thought_names():
    assert pickup_steps(hand_episode()) == [3]


def test_changes_name_another_colour_kind_or_family_over_the_whole_run_of_the_thought():
    red = "pickup red ball to complete pickup mission"
    assert change_thought(red, "none") == red
    assert change_thought(red, "colour") == "pickup green ball to complete pickup mission"
    assert change_thought("remove blocking object grey box", "colour") == \
        "remove blocking object red box"  # the colours wrap around
    assert change_thought(red, "kind") == "pickup red box to complete pickup mission"
    assert change_thought(red, "family") == "explore unseen area"
    episode = hand_episode()
    changed = changed_episode(episode, [3], "colour")
    assert changed.thoughts[0] == episode.thoughts[0] and changed.thoughts[4] == episode.thoughts[4]
    assert changed.thoughts[1:4] == ["pickup green ball to complete pickup mission"] * 3
    assert episode.thoughts[1] == "pickup red ball to complete pickup mission"  # a copy


def test_probabilities_equal_a_step_by_step_run_of_each_episode():
    episodes, failed = bot_episodes(LEVEL, [2, 3, 5])
    assert not failed and len({len(e.actions) for e in episodes}) > 1  # ragged lengths
    steps = [pickup_steps(e) for e in episodes]
    assert all(steps)
    agent = tiny_agent()
    together = pickup_probabilities(agent, VOCAB, episodes, steps, batch_size=2)
    expected = []
    for episode, wanted in zip(episodes, steps):
        mission = agent.encode_missions(pad_tokens([VOCAB.encode(episode.mission)]))
        memory = agent.initial_memory(1)
        with torch.no_grad():
            for t, image in enumerate(episode.images):
                thought = pad_tokens([VOCAB.encode_thought(episode.thoughts[t])])
                out = agent(torch.as_tensor(image[None]).long(), mission, memory, thought, True)
                memory = out.memory
                if t in wanted:
                    expected.append(float(torch.softmax(out.action_logits, -1)[0, 3]))
    np.testing.assert_allclose(together, expected, rtol=1e-5)
    reading = object_reading(agent, VOCAB, episodes)
    assert reading.steps == sum(map(len, steps)) and set(reading.pickup) == set(CHANGES)
    assert reading.pickup["none"] == pytest.approx(np.mean(expected), rel=1e-5)
    assert reading.pickup["colour"] != reading.pickup["none"]  # an untrained agent reads words
    with pytest.raises(ValueError, match="needs a TC agent"):
        pickup_probabilities(tiny_agent(False), VOCAB, episodes, steps)


def test_command_prints_and_writes_the_reading(tmp_path, capsys):
    save_checkpoint(tmp_path / "models" / "tc" / "best.pt", tiny_agent(), VOCAB)
    out = tmp_path / "open_loop.csv"
    open_loop.main(["--model", "tc", "--env", LEVEL, "--fresh", "3", "--object-reading",
                    "--storage", str(tmp_path), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "object reading, " in printed and "another family" in printed
    row = next(csv.DictReader(out.open()))
    assert int(row["pickup_steps"]) >= 3
    assert all(0 <= float(row[f"pickup_{change}"]) <= 1 for change in CHANGES)
    open_loop.main(["--model", "tc", "--env", LEVEL, "--fresh", "1", "--storage", str(tmp_path),
                    "--out", str(out)])  # without the flag: no reading, no columns
    assert "pickup_none" not in next(csv.DictReader(out.open()))
    assert not math.isnan(float(row["pickup_none"]))

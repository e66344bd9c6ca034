"""Open-loop thoughts: the agent watching the bot's episodes, the summary, `tc-open-loop`."""
from __future__ import annotations

import csv
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from babyai.agent.checkpoint import save_checkpoint
from babyai.agent.model import ModelConfig, build_agent
from babyai.agent.rollout import pad_tokens
from babyai.common.errors import UserError
from babyai.commands import open_loop
from babyai.data.vocab import Vocabulary
from babyai.evaluation.open_loop import WatchedEpisode, bot_episodes, summarize, watch

ROOT = Path(__file__).resolve().parents[1]
LEVEL = "BabyAI-GoToRedBallNoDists-v0"
VOCAB = Vocabulary.build(["go to the red ball explore unseen area to complete goto mission"])


def tiny_agent(use_thoughts: bool = True):
    torch.manual_seed(0)
    return build_agent(ModelConfig(vocab_size=len(VOCAB), memory_dim=16, image_dim=8,
                                   instr_dim=8, use_thoughts=use_thoughts)).eval()


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    """Untrained TC and BC checkpoints and a level set with an easy and a hard bin."""
    root = tmp_path_factory.mktemp("storage")
    for name, use_thoughts in (("tc", True), ("bc", False)):
        save_checkpoint(root / "models" / name / "best.pt", tiny_agent(use_thoughts), VOCAB)
    (root / "levels").mkdir()
    with open(root / "levels" / "tiny.pkl", "wb") as handle:
        pickle.dump({"mission": {1: {11: None, 12: None}, 6: {13: None, 14: None, 15: None}}},
                    handle)
    return root


def test_watching_a_batch_equals_watching_each_episode_alone_step_by_step():
    episodes, failed = bot_episodes(LEVEL, [21, 22, 23])
    assert not failed and len({len(e.actions) for e in episodes}) > 1  # ragged lengths
    agent = tiny_agent()
    together = watch(agent, VOCAB, episodes, batch_size=3)
    for episode, seen in zip(episodes, together):
        assert seen.bot_thoughts == list(episode.thoughts) and seen.seed == episode.seed
        mission = agent.encode_missions(pad_tokens([VOCAB.encode(episode.mission)]))
        memory = agent.initial_memory(1)
        with torch.no_grad():
            for t, image in enumerate(episode.images):
                out = agent(torch.as_tensor(image[None]).long(), mission, memory, None, False)
                memory = out.memory
                assert VOCAB.decode(out.thought_tokens[0].tolist()) == seen.thoughts[t]
                assert int(out.action_logits.argmax()) == seen.actions[t]
        assert len(seen.thoughts) == len(seen.actions) == len(episode.actions)


def test_watch_refuses_an_agent_without_thoughts():
    with pytest.raises(ValueError, match="TC agent"):
        watch(tiny_agent(use_thoughts=False), VOCAB, [])


def test_summary_counts_steps_by_hand():
    bots = ["go to red ball to complete goto mission", "explore unseen area",
            "pickup red ball to complete pickup mission", "pickup red ball to complete pickup mission"]
    watched = [WatchedEpisode(1, "m", bots[:2], [2, 2], [bots[0], "explore unseen area"], [2, 1]),
               WatchedEpisode(2, "m", bots[2:], [3, 3],
                              ["pickup blue ball to complete pickup mission", "explore unseen area"],
                              [3, 3])]
    summary = summarize(watched)
    assert (summary.episodes, summary.steps) == (2, 4)
    assert summary.action_match == pytest.approx(3 / 4)
    assert summary.kinds["match"] == pytest.approx(2 / 4) == summary.thought_match
    assert summary.kinds["other_object"] == pytest.approx(1 / 4)
    assert summary.kinds["other_family"] == pytest.approx(1 / 4)
    assert summary.families["pickup"] == (pytest.approx(2 / 4), 0.0)
    assert summary.families["explore"] == (pytest.approx(1 / 4), 1.0)


def test_command_prints_and_writes_each_group(storage, tmp_path):
    out = tmp_path / "open_loop.csv"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "open_loop.py"), "--model", "tc",
                           "--levels", "tiny", "--env", LEVEL, "--fresh", "2", "--out", str(out),
                           "--storage", str(storage)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "tc fresh levels: 2 levels" in done.stdout and "tc bins 5-9: 3 levels" in done.stdout
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["group"] for row in rows] == ["fresh levels", "bins 1-4", "bins 5-9"]
    assert [int(row["levels"]) for row in rows] == [2, 2, 3]
    for row in rows:
        shares = [float(row[f"thought_{kind}"]) for kind in
                  ("match", "stale", "early", "other_object", "other_family")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-3) and 0 <= float(row["action_match"]) <= 1


@pytest.mark.parametrize("argv,message", [
    (["--model", "bc", "--levels", "tiny", "--env", LEVEL], "BC model"),
    (["--model", "tc"], "nothing to watch"),
    (["--model", "tc", "--levels", "missing"], "does not exist"),
    (["--model", "tc", "--levels", "tiny", "--env", LEVEL, "--hard-from", "12"], "--hard-from"),
])
def test_bad_input_is_a_clear_error(storage, argv, message):
    with pytest.raises(UserError, match=message):
        open_loop.main([*argv, "--storage", str(storage)])


def test_out_that_is_a_directory_fails_before_any_work(storage, tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        open_loop.main(["--model", "missing_model", "--fresh", "1", "--env", LEVEL,
                        "--out", str(tmp_path), "--storage", str(storage)])

"""Episode pictures: captions, re-simulation, GIF frame counts, the script's sources."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from minigrid.utils.baby_ai_bot import BabyAIBot
from PIL import Image

from babyai.demos.files import save_demos
from babyai.env.envs import make_env
from babyai.demos.episode import Episode
from babyai.common.errors import UserError
from babyai.reports.visualize import (Replay, Trace, caption_lines, render_trace, replay,
                              save_animation)
from babyai.commands import visualize

LEVEL = "BabyAI-MiniBossLevel-v0"


def bot_episode(env_name: str, seed: int) -> Episode:
    """A noise-free minigrid-bot episode with made-up thoughts (one per step)."""
    env = make_env(env_name)
    obs, _ = env.reset(seed=seed)
    bot = BabyAIBot(env)
    images, directions, actions = [], [], []
    done = False
    while not done:
        action = int(bot.replan())
        images.append(obs["image"])
        directions.append(obs["direction"])
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    thoughts = [f"thought number {i}" for i in range(len(actions))]
    return Episode(env.unwrapped.mission, np.stack(images), directions, actions, thoughts, seed)


def gif_frames(path: Path) -> int:
    with Image.open(path) as image:
        return image.n_frames


def test_captions_follow_the_steps_and_the_outcome():
    trace = Trace(LEVEL, 7, [2, 3], thoughts=["go to red ball", "pickup red ball"],
                  bot_thoughts=["explore unseen area", "pickup red ball"], label="TC agent")
    won = Replay(frames=[], mission="pick up the red ball", reward=0.9, done=True)
    first = caption_lines(trace, won, 0)
    assert first == [("header", f"TC agent | {LEVEL} | seed 7 | step 0/2"),
                     ("mission", "mission: pick up the red ball"),
                     ("thought", "thought: go to red ball"),
                     ("bot", "bot thought: explore unseen area"),
                     ("action", "action: forward")]
    assert caption_lines(trace, won, 1)[-1] == ("action", "action: pickup")
    assert caption_lines(trace, won, 2)[-1] == ("success", "success (reward 0.90)")
    lost = Replay(frames=[], mission="m", reward=0.0, done=True)
    assert caption_lines(trace, lost, 2)[-1][0] == "failure"
    halted = Trace(LEVEL, 7, [2], thoughts=["go to red ball", "pickup red ball"],
                   halt_reason="thought matched pickup_ball")
    last = caption_lines(halted, lost, 1)
    assert ("thought", "thought: pickup red ball") in last
    assert last[-1] == ("failure", "HALTED before acting: thought matched pickup_ball")
    bc = caption_lines(Trace(LEVEL, 7, [2], label="BC agent"), won, 0)
    assert [key for key, _ in bc] == ["header", "mission", "action"]


def test_replay_gives_one_frame_per_state_and_checks_the_mission():
    episode = bot_episode(LEVEL, 3)
    trace = Trace(LEVEL, 3, list(episode.actions), mission=episode.mission)
    replayed = replay(trace, tile_size=8)
    assert len(replayed.frames) == len(episode) + 1
    assert replayed.reward > 0 and replayed.done
    assert replayed.frames[0].shape == (9 * 8, 9 * 8, 3)
    with pytest.raises(UserError, match="mission"):
        replay(Trace(LEVEL, 3, [], mission="go to the moon"))
    with pytest.raises(UserError, match="do not match"):
        replay(Trace(LEVEL, 3, list(episode.actions) + [2]))


def test_gif_has_one_frame_per_state(tmp_path):
    episode = bot_episode(LEVEL, 3)
    images = render_trace(Trace(LEVEL, 3, list(episode.actions),
                                thoughts=list(episode.thoughts), label="bot"))
    assert len(images) == len(episode) + 1
    assert len({image.size for image in images}) == 1
    path = save_animation(images, tmp_path / "bot.gif", fps=5)
    assert gif_frames(path) == len(episode) + 1
    with pytest.raises(UserError, match=".gif or .mp4"):
        save_animation(images, tmp_path / "bot.avi")


def test_script_renders_demos_re_simulated_from_their_seeds(tmp_path, capsys):
    episodes = [bot_episode(LEVEL, seed) for seed in (3, 4)]
    demos = tmp_path / "demos.pkl"
    save_demos(demos, episodes, {"env": LEVEL})
    script = visualize
    written = script.main(["--demos", str(demos), "--env", "MiniBossLevel", "--episodes", "2",
                           "--out", str(tmp_path / "demo.gif"), "--tile-size", "8"])
    assert [p.name for p in written] == ["demo_00_seed3.gif", "demo_01_seed4.gif"]
    for path, episode in zip(written, episodes):
        assert gif_frames(path) == len(episode) + 1
    assert "wrote" in capsys.readouterr().out
    one = script.main(["--demos", str(demos), "--env", "MiniBossLevel", "--seed", "4",
                       "--out", str(tmp_path / "four.gif"), "--tile-size", "8"])
    assert one == [tmp_path / "four.gif"] and gif_frames(one[0]) == len(episodes[1]) + 1
    with pytest.raises(UserError, match="mission"):   # the demos are not BossLevel levels
        script.main(["--demos", str(demos), "--env", "BossLevel",
                     "--out", str(tmp_path / "x.gif")])


def test_script_renders_the_worst_episodes_of_a_jsonl(tmp_path):
    good = bot_episode(LEVEL, 3)
    records = [
        {"seed": 3, "success": True, "mission": good.mission, "actions": list(map(int, good.actions)),
         "thoughts": [], "env_name": LEVEL},
        {"seed": 4, "success": False, "actions": [0, 0, 2], "thoughts": ["a", "b", "c"],
         "env_name": LEVEL},
        {"seed": 5, "success": False, "actions": [1], "thoughts": ["x", "open red door"],
         "halted": True, "halt_reason": "red", "env_name": LEVEL},
        {"seed": 6, "success": False, "actions": [2, 2], "env_name": LEVEL},
    ]
    jsonl = tmp_path / "episodes.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    script = visualize
    written = script.main(["--from-jsonl", str(jsonl), "--worst", "2",
                           "--out", str(tmp_path / "worst.gif"), "--tile-size", "8"])
    assert [p.name for p in written] == ["worst_00_seed4.gif", "worst_01_seed5.gif"]
    assert [gif_frames(p) for p in written] == [4, 2]
    jsonl.write_text("{not json\n")
    with pytest.raises(UserError, match="not JSON"):
        script.main(["--from-jsonl", str(jsonl), "--out", str(tmp_path / "w.gif")])


def test_script_rejects_bad_outputs(tmp_path):
    script = visualize
    with pytest.raises(UserError, match=".gif or .mp4"):
        script.main(["--demos", "x.pkl", "--out", str(tmp_path / "a.png")])
    with pytest.raises(UserError, match="not allowed"):
        script.main(["--bot", "--demos", "x.pkl"])


def test_script_renders_the_thinking_bot_with_its_thoughts(tmp_path):
    script = visualize
    written = script.main(["--bot", "--env", "MiniBossLevel", "--seed", "3",
                           "--out", str(tmp_path / "bot.gif"), "--tile-size", "8"])
    episode = bot_episode(LEVEL, 3)          # the thinking bot acts like minigrid's bot
    assert gif_frames(written[0]) == len(episode) + 1
    from babyai.reports.visualize import bot_traces
    trace = bot_traces(LEVEL, [3])[0]
    assert trace.actions == list(episode.actions)
    assert len(trace.thoughts) == len(trace.actions) and all(trace.thoughts)


@pytest.mark.slow
def test_script_renders_a_trained_agent(tmp_path, monkeypatch):
    from babyai.reports import visualize as rendering
    from babyai.agent.checkpoint import save_checkpoint
    from babyai.agent.model import ModelConfig, build_agent
    from babyai.common.runtime import seed_everything
    from babyai.data.vocab import Vocabulary

    seed_everything(0)
    vocab = Vocabulary.build(["go to the red ball", "go to red ball to complete goto mission",
                              "explore unseen area"])
    agent = build_agent(ModelConfig(vocab_size=len(vocab), image_dim=16, memory_dim=32,
                                    instr_dim=16))
    checkpoint = tmp_path / "tc.pt"
    save_checkpoint(checkpoint, agent, vocab)
    seen = []
    real = rendering.model_traces

    def spy(*args, **kwargs):
        seen.extend(real(*args, **kwargs))
        return seen

    monkeypatch.setattr(rendering, "model_traces", spy)
    written = visualize.main([
        "--model", str(checkpoint), "--env", "GoToRedBallNoDists", "--seed", "5", "--argmax",
        "--bot-thoughts", "--out", str(tmp_path / "tc.gif"), "--tile-size", "8"])
    (trace,) = seen
    assert trace.label == "TC agent" and trace.seed == 5
    assert len(trace.thoughts) == len(trace.bot_thoughts) == len(trace.actions) >= 1
    assert gif_frames(written[0]) == len(trace.actions) + 1
    with Image.open(written[0]) as image:
        assert image.size[0] == 480               # narrow grids are centred on a wider canvas

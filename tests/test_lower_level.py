"""Variants of the lower level, off by default: `--front-cell` (it also reads the features
of the cell in front of the agent) and `--lower-heads N` (it reads mission and thought with
N attention queries).

The cell is where minigrid puts it, the reader appends exactly that cell's modulated
features; N heads are N single-head attentions side by side; agents with either act, save
and load (old checkpoints load without them), and the flags reach training (TC and BC) and
the study's plan.
"""
from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import minigrid  # noqa: F401  (registers the BabyAI levels)
import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from synthetic_demos import write_demos

from babyai.agent.checkpoint import check_compatible, load_checkpoint, read_checkpoint, save_checkpoint
from babyai.agent.layers import FRONT_CELL, MemoryAttention, VisualReader
from babyai.agent.model import Memory, ModelConfig, build_agent
from babyai.commands import train_bc, train_tc
from babyai.common.errors import UserError
from babyai.data.vocab import Vocabulary
from babyai.pipeline.study import StudyConfig, plan_runs

ENV = "BabyAI-GoToRedBall-v0"
VOCAB = Vocabulary.build(["go to the red ball", "pickup red ball to complete pickup mission"])


def test_the_front_cell_is_the_cell_the_agent_acts_on():
    env = gym.make("BabyAI-GoToObj-v0")
    seen = 0
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        for _ in range(40):
            cell = env.unwrapped.grid.get(*env.unwrapped.front_pos)
            if cell is not None and cell.type in ("key", "ball", "box"):
                code = obs["image"][FRONT_CELL]
                assert (code[0], code[1]) == (OBJECT_TO_IDX[cell.type], COLOR_TO_IDX[cell.color])
                seen += 1
                break
            obs, *_ = env.step(int(env.unwrapped.np_random.integers(3)))  # turn or forward
    env.close()
    assert seen >= 5


def test_the_reader_appends_the_modulated_front_cell():
    torch.manual_seed(0)
    plain, front = VisualReader(8, 6), VisualReader(8, 6, front_cell=True)
    front.load_state_dict(plain.state_dict())  # no parameters of its own
    plain.eval(), front.eval()
    visual, condition = torch.randn(3, 8, 7, 7), torch.randn(3, 6)
    out = front(visual, condition)
    assert out.shape == (3, 16) and front.output_dim == 16 and plain.output_dim == 8
    modulated = visual
    for film in front.films:
        modulated = film(modulated, condition)
    torch.testing.assert_close(out[:, :8], plain(visual, condition))
    torch.testing.assert_close(out[:, 8:], modulated[:, :, 3, 5])


def test_heads_are_single_head_attentions_side_by_side():
    torch.manual_seed(0)
    multi = MemoryAttention(12, 8, heads=3)
    memory, features = torch.randn(4, 12), torch.randn(4, 5, 8)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False], [True] + [False] * 4])
    out = multi(memory, features, mask)
    assert out.shape == (4, 24) and multi.output_dim == 24
    for head in range(3):
        single = MemoryAttention(12, 8)
        single.query.weight.data = multi.query.weight.data[head * 8:(head + 1) * 8]
        single.query.bias.data = multi.query.bias.data[head * 8:(head + 1) * 8]
        torch.testing.assert_close(out[:, head * 8:(head + 1) * 8], single(memory, features, mask))
    assert torch.allclose(out[3, :8], features[3, 0])  # one real token: every head reads it
    assert MemoryAttention(12, 8).query.weight.shape == (8, 12)  # the paper's parameters
    with pytest.raises(UserError, match="lower_heads must be positive"):
        ModelConfig(vocab_size=5, lower_heads=0)


@pytest.mark.parametrize("use_thoughts, variant", [(True, "front_cell"), (False, "front_cell"),
                                                   (True, "lower_heads"), (False, "lower_heads")])
def test_agents_with_a_variant_act_save_and_load(tmp_path, use_thoughts, variant):
    torch.manual_seed(0)
    value = {"front_cell": True, "lower_heads": 3}[variant]
    config = ModelConfig(vocab_size=len(VOCAB), image_dim=8, memory_dim=12, instr_dim=8,
                         use_thoughts=use_thoughts, **{variant: value})
    agent = build_agent(config).eval()
    if variant == "front_cell":
        assert agent.policy.memory_cell.input_size == 16
    else:
        assert agent.policy.mission_projection.in_features == 24
    images = torch.randint(0, 11, (2, 7, 7, 3))
    mission = agent.encode_missions(torch.tensor([VOCAB.encode("go to the red ball")] * 2))
    output = agent(images, mission, Memory.zeros(2, 12), teacher_forcing=False)
    changed = images.clone()
    changed[:, 3, 5, 0] = (changed[:, 3, 5, 0] + 1) % 11
    assert not torch.equal(agent(changed, mission, Memory.zeros(2, 12),
                                 teacher_forcing=False).action_logits, output.action_logits)
    save_checkpoint(tmp_path / "a.pt", agent, VOCAB)
    loaded = load_checkpoint(tmp_path / "a.pt").agent
    assert getattr(loaded.config, variant) == value
    torch.testing.assert_close(loaded(images, mission, Memory.zeros(2, 12),
                                      teacher_forcing=False).action_logits, output.action_logits)
    default = {"front_cell": False, "lower_heads": 1}[variant]
    old = dataclasses.replace(config, **{variant: default})  # saved before the field existed
    save_checkpoint(tmp_path / "old.pt", build_agent(old), VOCAB)
    payload = read_checkpoint(tmp_path / "old.pt")
    del payload["config"][variant]
    torch.save(payload, tmp_path / "old.pt")
    assert getattr(load_checkpoint(tmp_path / "old.pt").agent.config, variant) == default
    with pytest.raises(UserError, match=f"{variant}: checkpoint {default} vs requested {value}"):
        check_compatible(payload, config, "old.pt")


def test_the_flags_train_tc_and_bc_and_the_study_plans_them(tmp_path):
    write_demos(tmp_path, count=10, valid_count=3)
    base = ["--env", ENV, "--demos", "synth", "--storage", str(tmp_path), "--memory-dim", "16",
            "--instr-dim", "8", "--image-dim", "8", "--batch-size", "4", "--epochs", "1",
            "--val-episodes", "0", "--threads", "1", "--front-cell", "--lower-heads", "2"]
    for main, name in ((train_tc.main, "tc"), (train_bc.main, "bc")):
        summary = main(base + ["--model", name])
        saved = json.loads((summary.run_dir / "config.json").read_text())
        assert saved["front_cell"] is True and saved["lower_heads"] == 2
        config = load_checkpoint(summary.run_dir / "last.pt").agent.config
        assert config.front_cell and config.lower_heads == 2
    agents = ("tc", "bc", "tc_nothought")
    for run in plan_runs(StudyConfig(agents=agents, seeds=1, front_cell=True, lower_heads=4),
                         mean_length=80.0, root=tmp_path):
        assert "--front-cell" in run.args and run.args[run.args.index("--lower-heads") + 1] == "4"
    assert all("--front-cell" not in run.args and "--lower-heads" not in run.args
               for run in plan_runs(StudyConfig(agents=agents, seeds=1), mean_length=80.0,
                                    root=tmp_path))
    with pytest.raises(UserError, match="--lower-heads: must be a positive integer, got 0"):
        train_tc.main(base[:-2] + ["--lower-heads", "0", "--model", "zero"])
    assert not (tmp_path / "models" / "zero").exists()

"""Counterfactual pick-up thoughts (`--counterfactual-coef`): which steps, the swapped
thoughts, the unlikelihood term, the second reading that changes nothing, and the flag."""
from __future__ import annotations

import pytest
import torch

from step_replay import replay, step_once
from synthetic_demos import write_demos

from babyai.agent.model import ModelConfig, build_agent
from babyai.commands import train_bc, train_tc
from babyai.common.errors import UserError
from babyai.data.vocab import Vocabulary
from babyai.training.config import TrainConfig
from babyai.training.counterfactual import PICKUP, ThoughtSwap, unlikelihood
from babyai.training.trainer import Trainer

ENV = "BabyAI-GoToRedBall-v0"
SENTENCES = ["pickup red ball to complete pickup mission", "remove blocking object grey key",
             "pickup key to unlock the door", "open blue door", "drop green box to complete "
             "putnext mission", "pick up the yellow box"]
VOCAB = Vocabulary.build(SENTENCES)


def tokens(sentences: list[str]) -> torch.Tensor:
    rows = [VOCAB.encode_thought(text) for text in sentences]
    width = max(map(len, rows))
    return torch.tensor([row + [0] * (width - len(row)) for row in rows])


def test_only_pickups_under_a_thought_naming_a_colour_are_selected():
    swap = ThoughtSwap.from_vocab(VOCAB)
    thoughts = tokens(SENTENCES[:5] + SENTENCES[:1])
    actions = torch.tensor([PICKUP, PICKUP, PICKUP, PICKUP, PICKUP, 2])
    # no colour in "pickup key ..."; "open" and "drop" are not pick-up thoughts; a turn is not a pick-up
    assert swap.select(thoughts, actions).tolist() == [True, True, False, False, False, False]


def test_swapped_thoughts_name_another_object_and_keep_the_rest():
    swap = ThoughtSwap.from_vocab(VOCAB)
    sentences = ["pickup red ball to complete pickup mission",
                 "remove blocking object grey key"] * 100
    before = tokens(sentences)
    after = swap.swap(before, generator=torch.Generator().manual_seed(0))
    kinds_changed = 0
    for old, new in zip(before.tolist(), after.tolist()):
        old_words, new_words = VOCAB.decode(old).split(), VOCAB.decode(new).split()
        assert len(old_words) == len(new_words)
        changed = [(a, b) for a, b in zip(old_words, new_words) if a != b]
        colour = [(a, b) for a, b in changed if a in ("red", "grey")]
        assert len(colour) == 1 and colour[0][1] in ("red", "green", "blue", "yellow", "grey")
        kind = [(a, b) for a, b in changed if a in ("ball", "key")]
        assert len(changed) == len(colour) + len(kind)  # nothing else changes
        kinds_changed += bool(kind)
        assert all(b in ("ball", "key", "box") for _, b in kind)
    assert 70 <= kinds_changed <= 130  # about half of the rows


def test_unlikelihood_is_minus_log_of_not_picking_up():
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0, 0.5, 0.0, 0.0], [3.0, 0.0, 0.0, -4.0, 0, 0, 0]])
    p = torch.softmax(logits, dim=-1)[:, PICKUP]
    torch.testing.assert_close(unlikelihood(logits), -torch.log1p(-p))


def test_the_second_reading_is_the_lower_level_on_the_swapped_thought_and_changes_nothing():
    torch.manual_seed(0)
    agent = build_agent(ModelConfig(len(VOCAB), image_dim=16, memory_dim=24, instr_dim=16)).eval()
    images = torch.randint(0, 6, (3, 7, 7, 3))
    mission = agent.encode_missions(tokens(SENTENCES[:3])[:, 1:])
    memory = agent.initial_memory(3)
    memory = memory._replace(lower_h=torch.randn_like(memory.lower_h))
    thought = tokens(SENTENCES[:3])
    swapped = tokens(["pickup grey ball to complete pickup mission",
                      "remove blocking object red key"])
    rows = torch.tensor([0, 1])
    plain = agent(images, mission, memory, thought_target=thought)
    both = agent(images, mission, memory, thought_target=thought, counterfactual=(rows, swapped))
    assert plain.counterfactual_logits is None
    torch.testing.assert_close(both.action_logits, plain.action_logits)  # rows independent in eval
    for mine, theirs in zip(both.memory, plain.memory):
        torch.testing.assert_close(mine, theirs)
    alone = agent(images[rows], mission.index(rows), memory.index(rows), thought_target=swapped)
    torch.testing.assert_close(both.counterfactual_logits, alone.action_logits)
    agent.train()  # in training, one pass: the real rows' BatchNorm statistics include them
    out = agent(images, mission, memory, thought_target=thought, counterfactual=(rows, swapped))
    out.counterfactual_logits[:, PICKUP].sum().backward()
    assert agent.policy.actor[0].weight.grad is not None


@pytest.fixture
def demos(tmp_path):
    write_demos(tmp_path, count=14, valid_count=4)
    return tmp_path


def test_the_term_joins_the_loss_as_computed_directly(tmp_path, monkeypatch):
    trainer, batch, metrics = step_once(tmp_path, monkeypatch, "swap",
                                        counterfactual_coef=0.5, model="cf")
    swap = trainer.step.swap
    assert swap is not None
    total, added, picked = 0.0, 0.0, 0
    for output, parts in replay(trainer, batch, swap=swap):
        total += float(parts.total)
        if output.counterfactual_logits is not None:
            picked += len(output.counterfactual_logits)
            added += float(unlikelihood(output.counterfactual_logits).sum())
    assert picked > 0
    assert metrics["loss"] == pytest.approx(total + 0.5 * added / batch.num_steps, rel=1e-4)
    off = Trainer(TrainConfig(env=ENV, demos="synth", storage=str(tmp_path), memory_dim=24,
                              instr_dim=16, image_dim=16, val_episodes=0, device="cpu",
                              model="off"))
    assert off.step.swap is None


def test_flag_errors(demos):
    base = ["--env", ENV, "--demos", "synth", "--storage", str(demos), "--epochs", "1",
            "--val-episodes", "0"]
    with pytest.raises(UserError, match="needs teacher forcing"):
        train_tc.main(base + ["--counterfactual-coef", "1", "--no-teacher-forcing",
                              "--sg-coef", "0"])
    with pytest.raises(UserError, match="must be >= 0"):
        train_tc.main(base + ["--counterfactual-coef", "-1"])
    with pytest.raises(UserError, match="unrecognized"):
        train_bc.main(base + ["--counterfactual-coef", "1"])

"""The binding term (`--binding-coef`): which steps, their targets, the head, the term in the
loss as computed directly, and the flag through tc-train and the study plan."""
from __future__ import annotations

import csv
from collections import Counter

import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from step_replay import replay, step_once
from synthetic_demos import write_demos

from babyai.agent.checkpoint import load_checkpoint
from babyai.agent.model import ModelConfig, build_agent
from babyai.commands import train_bc, train_tc
from babyai.common.errors import UserError
from babyai.data.vocab import Vocabulary
from babyai.pipeline.study import StudyConfig, plan_runs
from babyai.training.binding import BindingTargets, binding_loss
from babyai.training.counterfactual import ThoughtSwap

ENV = "BabyAI-GoToRedBall-v0"
SENTENCES = ["pickup red ball to complete pickup mission", "remove blocking object grey key",
             "open blue door", "drop red ball to complete putnext mission",
             "pickup key to unlock the door", "go to purple box to complete goto mission",
             "explore unseen area", "pickup green box to complete pickup mission"]
VOCAB = Vocabulary.build(SENTENCES)


def tokens(sentences: list[str]) -> torch.Tensor:
    rows = [VOCAB.encode_thought(text) for text in sentences]
    width = max(map(len, rows))
    return torch.tensor([row + [0] * (width - len(row)) for row in rows])


def facing(objects: list[tuple[str, str]]) -> torch.Tensor:
    """Images [N, 7, 7, 3] of empty cells with (kind, colour) in the cell in front."""
    images = torch.zeros(len(objects), 7, 7, 3, dtype=torch.uint8)
    images[..., 0] = OBJECT_TO_IDX["empty"]
    for row, (kind, colour) in enumerate(objects):
        images[row, 3, 5, 0] = OBJECT_TO_IDX[kind]
        images[row, 3, 5, 1] = COLOR_TO_IDX[colour]
        images[row, 3, 6, 0] = OBJECT_TO_IDX["agent"]  # elsewhere: never read
    return images


def test_targets_say_whether_the_object_in_front_is_the_one_the_thought_names():
    targets = BindingTargets.from_vocab(VOCAB)
    thoughts = tokens(["pickup red ball to complete pickup mission"] * 4
                      + ["remove blocking object grey key", "open blue door"])
    images = facing([("ball", "red"), ("ball", "green"), ("key", "red"), ("box", "red"),
                     ("key", "grey"), ("door", "blue")])
    assert targets.labels(images, thoughts).tolist() == [1, 0, 0, 0, 1, 1]
    assert targets.select(images, thoughts).all()


def test_only_thoughts_about_a_named_object_in_front_with_an_object_there_are_selected():
    targets = BindingTargets.from_vocab(VOCAB)
    thoughts = tokens(SENTENCES)
    objects = [("ball", "red")] * len(SENTENCES)
    # a drop thought names what is carried; "pickup key" names no colour; "explore" no object
    assert targets.select(facing(objects), thoughts).tolist() == [
        True, True, True, False, False, True, False, True]
    nothing_in_front = facing([("wall", "red"), ("empty", "red"), ("floor", "red")])
    assert not targets.select(nothing_in_front, tokens(SENTENCES[:1] * 3)).any()


def test_the_second_reading_changes_the_colour_the_kind_or_both():
    swap = ThoughtSwap.from_vocab(VOCAB)
    sentences = ["pickup red ball to complete pickup mission", "open blue door"] * 300
    before = tokens(sentences)
    after = swap.swap_either(before, generator=torch.Generator().manual_seed(0))
    changes = Counter()
    for old, new in zip(before.tolist(), after.tolist()):
        changed = {a for a, b in zip(VOCAB.decode(old).split(), VOCAB.decode(new).split())
                   if a != b}
        assert changed and changed <= {"red", "ball", "blue"}  # nothing else changes
        changes[tuple(sorted(changed))] += 1
    assert changes[("blue",)] == 300  # a door thought names no other kind: its colour
    for change in (("red",), ("ball",), ("ball", "red")):
        assert 70 <= changes[change] <= 130  # about one in three


def test_a_vocabulary_without_colours_or_kinds_is_refused():
    with pytest.raises(ValueError, match="no colour or no kind"):
        BindingTargets.from_vocab(Vocabulary.build(["explore unseen area"]))


def test_the_head_reads_the_lower_memory_and_only_a_tc_agent_has_one():
    config = ModelConfig(len(VOCAB), image_dim=16, memory_dim=24, instr_dim=16, binding_head=True)
    agent = build_agent(config)
    memory = torch.randn(5, 24)
    expected = memory @ agent.policy.binding.weight.T + agent.policy.binding.bias
    torch.testing.assert_close(agent.binding_logits(memory), expected.squeeze(1))
    assert not hasattr(build_agent(ModelConfig(len(VOCAB), memory_dim=24)).policy, "binding")
    with pytest.raises(UserError, match="BC agent has none"):
        ModelConfig(len(VOCAB), use_thoughts=False, binding_head=True)


def test_binding_loss_is_the_binary_cross_entropy():
    logits, labels = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = -(labels * torch.log(torch.sigmoid(logits))
                 + (1 - labels) * torch.log(1 - torch.sigmoid(logits)))
    torch.testing.assert_close(binding_loss(logits, labels), expected)


@pytest.fixture
def demos(tmp_path):
    write_demos(tmp_path, count=14, valid_count=4)
    return tmp_path


def test_the_term_joins_the_loss_as_computed_directly(tmp_path, monkeypatch):
    trainer, batch, metrics = step_once(tmp_path, monkeypatch, "swap_either", binding_coef=2.0,
                                        binding_swap="either", model="bind")
    swap, binding = trainer.step.swap, trainer.step.binding
    assert swap is not None and binding is not None and trainer.agent.config.binding_head
    total, added, rows, right = 0.0, 0.0, 0, 0
    for output, parts in replay(trainer, batch, swap=swap, pickup_term=False, binding=binding,
                                binding_swap="either"):
        assert output.counterfactual_logits is None  # no unlikelihood term asked for
        total += float(parts.total)
        if output.binding_logits is not None:
            rows += len(output.binding_logits)
            added += float(binding_loss(output.binding_logits, output.binding_labels).sum())
            right += int(((output.binding_logits > 0).float() == output.binding_labels).sum())
    assert rows > 0 and rows % 2 == 0  # each binding step read with its thought and swapped
    assert metrics["loss"] == pytest.approx(total + 2.0 * added / batch.num_steps, rel=1e-4)
    assert metrics["binding_acc"] == pytest.approx(right / rows)


def test_the_flag_through_tc_train_and_the_study(demos):
    base = ["--env", ENV, "--demos", "synth", "--storage", str(demos), "--epochs", "1",
            "--memory-dim", "24", "--instr-dim", "16", "--image-dim", "16",
            "--val-episodes", "0", "--threads", "1"]
    summary = train_tc.main(base + ["--binding-coef", "1", "--model", "bind"])
    assert load_checkpoint(summary.run_dir / "last.pt").agent.config.binding_head
    with open(demos / "models" / "bind" / "log.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert 0 <= float(row["train/binding_acc"]) <= 1 and float(row["train/binding_bce"]) > 0
    with pytest.raises(UserError, match="needs teacher forcing"):
        train_tc.main(base + ["--binding-coef", "1", "--no-teacher-forcing", "--sg-coef", "0"])
    with pytest.raises(UserError, match="must be >= 0"):
        train_tc.main(base + ["--binding-coef", "-1"])
    with pytest.raises(UserError, match="invalid choice"):
        train_tc.main(base + ["--binding-coef", "1", "--binding-swap", "kind"])
    with pytest.raises(UserError, match="unrecognized"):
        train_bc.main(base + ["--binding-coef", "1"])
    runs = plan_runs(StudyConfig(agents=("tc", "bc", "tc_nothought"), seeds=1, binding_coef=0.5),
                     80.0, demos)
    flags = {run.agent: run.args for run in runs}
    assert flags["tc"][flags["tc"].index("--binding-coef") + 1] == "0.5"
    assert flags["tc"][flags["tc"].index("--binding-swap") + 1] == "colour"
    assert "--binding-coef" not in flags["bc"] and "--binding-coef" not in flags["tc_nothought"]

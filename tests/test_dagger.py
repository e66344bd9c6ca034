"""On-policy labels (DAgger): records to episodes, the collection command (resume, refusals)
and training on them from a checkpoint (--extra-demos, --init-from)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from synthetic_demos import write_demos

from babyai.agent.checkpoint import check_compatible, load_agent, read_checkpoint
from babyai.agent.model import ModelConfig
from babyai.agent.records import EpisodeRecord
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.commands import make_dagger_demos, train_tc
from babyai.common.errors import UserError
from babyai.common.seeds import DAGGER_START
from babyai.data.dataset import NO_ACTION
from babyai.training.dagger import labelled_episode
from babyai.demos.files import read_demo_file
from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

ENV = "BabyAI-GoToRedBall-v0"
DIMS = ["--memory-dim", "24", "--instr-dim", "16", "--image-dim", "16"]


def _observation(value: int) -> tuple[np.ndarray, int]:
    return np.full((7, 7, 3), value, dtype=np.uint8), value % 4


def test_a_record_becomes_the_bots_labels_on_the_agents_states_until_the_bot_gave_up():
    record = EpisodeRecord(seed=7, mission="go to the red ball", length=3, actions=[2, 2, 0],
                           bot_thoughts=["go to red ball", "go to red ball"],
                           bot_actions=[1, 2], bot_failure="step 2: gave up",
                           observations=[_observation(v) for v in (1, 2, 3)])
    episode = labelled_episode(record)
    assert len(episode) == 2 and episode.seed == 7 and episode.mission == "go to the red ball"
    assert episode.actions.tolist() == [1, 2]  # the bot's actions, not the agent's [2, 2]
    assert episode.thoughts == ["go to red ball", "go to red ball"]
    assert episode.images[:, 0, 0, 0].tolist() == [1, 2]
    assert episode.directions.tolist() == [1, 2]
    assert labelled_episode(EpisodeRecord(seed=1, mission="m", bot_failure="step 0: x")) is None
    with pytest.raises(ValueError, match="keep_observations=True"):
        labelled_episode(EpisodeRecord(seed=1, mission="m", bot_thoughts=["t"], bot_actions=[0]))


@pytest.fixture
def trained(tmp_path):
    """A tiny TC agent trained on synthetic demos (its own states are far from the bot's)."""
    write_demos(tmp_path, count=14, valid_count=4)
    train_tc.main(["--env", ENV, "--demos", "synth", "--storage", str(tmp_path), *DIMS,
                   "--batch-size", "6", "--epochs", "1", "--val-episodes", "0",
                   "--model", "base", "--device", "cpu", "--threads", "1"])
    return tmp_path


def _collect(root, name, episodes, *extra):
    return make_dagger_demos.main(["--model", "base", "--env", "GoToRedBall", "--demos", name,
                                   "--episodes", str(episodes), "--storage", str(root),
                                   "--save-interval", "2", "--max-batch", "3",
                                   "--no-progress", *extra])


def test_collection_labels_every_step_resumes_and_refuses_other_settings(trained):
    summary = _collect(trained, "dg", 3)
    assert summary.played == 3 and 0 < summary.episodes <= 3 and summary.steps > 0
    demo_file = read_demo_file(trained / "demos" / "dg.pkl")
    assert demo_file.meta["source"] == "dagger" and demo_file.meta["env"] == ENV
    assert demo_file.meta["progress"]["played"] == 3
    assert {e.seed for e in demo_file.episodes} <= {DAGGER_START + k for k in range(3)}
    # every label is a bot thought of the level's families and a valid action
    episode = demo_file.episodes[0].unpack()
    assert all(thought for thought in episode.thoughts) and set(episode.actions) <= set(range(7))

    # continuing to 5 levels equals collecting 5 at once
    resumed = _collect(trained, "dg", 5)
    fresh = _collect(trained, "dg_fresh", 5)
    assert resumed.played == fresh.played == 5 and resumed.steps == fresh.steps
    a = [e.unpack() for e in read_demo_file(trained / "demos" / "dg.pkl").episodes]
    b = [e.unpack() for e in read_demo_file(trained / "demos" / "dg_fresh.pkl").episodes]
    assert [(e.seed, e.actions.tolist(), e.thoughts) for e in a] == \
        [(e.seed, e.actions.tolist(), e.thoughts) for e in b]
    assert all(np.array_equal(x.images, y.images) for x, y in zip(a, b))

    # without --env the agent plays the level its checkpoint was trained on
    make_dagger_demos.main(["--model", "base", "--demos", "dg_env", "--episodes", "1",
                            "--storage", str(trained), "--no-progress"])
    assert read_demo_file(trained / "demos" / "dg_env.pkl").meta["env"] == ENV

    before = (trained / "demos" / "dg.pkl").read_bytes()
    with pytest.raises(UserError, match="other settings"):
        _collect(trained, "dg", 6, "--sample-seed", "1")
    assert (trained / "demos" / "dg.pkl").read_bytes() == before
    with pytest.raises(UserError, match="checkpoint not found"):
        make_dagger_demos.main(["--model", "nothing", "--demos", "x", "--storage", str(trained)])


def test_training_from_a_checkpoint_on_demos_plus_on_policy_labels(trained):
    _collect(trained, "dg", 3)
    labels = len(read_demo_file(trained / "demos" / "dg.pkl").episodes)
    config = TrainConfig(demos="synth", env=ENV, storage=str(trained), memory_dim=24,
                         instr_dim=16, image_dim=16, batch_size=6, epochs=1, val_episodes=0,
                         extra_demos="dg", init_from="base", model="finetuned", device="cpu",
                         threads=1)
    trainer = Trainer(config)
    assert len(trainer.train_data) == 14 + labels
    base = read_checkpoint(trained / "models" / "base" / "best.pt")
    assert trainer.vocab.itos == base["vocab"]
    for name, tensor in trainer.agent.state_dict().items():
        assert torch.equal(tensor, base["state_dict"][name]), name
    summary = trainer.run()
    assert summary.epochs_done == 1 and summary.frames > 0

    with pytest.raises(UserError, match="another architecture"):
        Trainer(TrainConfig(demos="synth", env=ENV, storage=str(trained), memory_dim=32,
                            instr_dim=16, image_dim=16, epochs=1, val_episodes=0,
                            init_from="base", model="wrong_dims", device="cpu"))
    with pytest.raises(UserError, match="cannot be combined with --extra-demos"):
        Trainer(TrainConfig(demos="synth", env=ENV, storage=str(trained), episodes=5,
                            extra_demos="dg", model="limited", device="cpu"))
    with pytest.raises(UserError, match="checkpoint not found"):
        Trainer(TrainConfig(demos="synth", env=ENV, storage=str(trained), epochs=1,
                            init_from="missing", model="nowhere", device="cpu"))


def test_a_checkpoint_older_than_an_architecture_field_is_compatible_with_its_default(trained):
    payload = read_checkpoint(trained / "models" / "base" / "best.pt")
    del payload["config"]["thought_decoder"]  # saved before the field existed
    config = ModelConfig(**{**payload["config"], "thought_decoder": "memory"})
    check_compatible(payload, config, "old.pt")  # the default is what loading builds
    with pytest.raises(UserError, match="thought_decoder: checkpoint 'memory' vs requested 'mission'"):
        check_compatible(payload, dataclasses.replace(config, thought_decoder="mission"), "old.pt")


def test_a_second_round_trains_on_both_rounds_through_a_glob(trained):
    _collect(trained, "round", 2)
    _collect(trained, "round2", 2, "--seed", "100")
    labels = [read_demo_file(trained / "demos" / f"{name}.pkl").episodes
              for name in ("round", "round2")]
    assert {e.seed for e in labels[0]}.isdisjoint(e.seed for e in labels[1])
    config = TrainConfig(demos="synth", env=ENV, storage=str(trained), memory_dim=24,
                         instr_dim=16, image_dim=16, batch_size=6, epochs=1, val_episodes=0,
                         extra_demos="round*", init_from="base", model="second_round",
                         device="cpu", threads=1)
    assert len(Trainer(config).train_data) == 14 + len(labels[0]) + len(labels[1])


def test_thoughts_only_extra_demos_train_the_thought_loss_alone(trained):
    _collect(trained, "dg", 3)
    labels = read_demo_file(trained / "demos" / "dg.pkl").episodes
    config = TrainConfig(demos="synth", env=ENV, storage=str(trained), memory_dim=24,
                         instr_dim=16, image_dim=16, batch_size=6, epochs=1, val_episodes=0,
                         extra_demos="dg", extra_demos_labels="thoughts", init_from="base",
                         model="thoughts_only", device="cpu", threads=1)
    trainer = Trainer(config)
    data = trainer.train_data
    extra_steps = sum(len(e) for e in labels)
    assert (data.actions[-extra_steps:] == NO_ACTION).all()
    assert (data.actions[:-extra_steps] < 7).all()
    assert trainer.run().frames > 0
    with pytest.raises(UserError, match="needs --extra-demos and a TC run"):
        TrainConfig(demos="synth", env=ENV, extra_demos_labels="thoughts").check()


def test_beta_lets_the_bot_drive_that_share_of_steps(trained):
    """--beta 1: the bot drives every step it answers, so the labels are the actions played
    and the levels are won; --beta 0.5: about half the steps, the same on a re-run."""
    loaded = load_agent("base", trained)
    seeds = [DAGGER_START + k for k in range(4)]
    options = RolloutOptions(bot_thoughts=True, bot_action_share=1.0, max_batch=2)
    records = run_episodes(loaded.agent, loaded.vocab, ENV, seeds, options)
    for record in records:
        answered = len(record.bot_actions)
        assert record.bot_steps == min(answered, record.length) > 0
        assert record.actions[:answered] == record.bot_actions[:record.length]
    assert all(record.success for record in records if record.bot_failure is None)

    half = _collect(trained, "dg_half", 6, "--beta", "0.5")
    again = _collect(trained, "dg_half_again", 6, "--beta", "0.5")
    assert 0.2 < half.bot_step_share < 0.8 and half.bot_step_share == again.bot_step_share
    assert read_demo_file(trained / "demos" / "dg_half.pkl").meta["beta"] == 0.5
    agent_only = _collect(trained, "dg_agent", 6)
    assert agent_only.bot_step_share == 0
    with pytest.raises(UserError, match="other settings"):
        _collect(trained, "dg_half", 6)  # the same file with another beta is refused
    with pytest.raises(UserError, match="--beta: must be in"):
        _collect(trained, "dg_bad", 2, "--beta", "1.5")
    with pytest.raises(UserError, match="needs bot_thoughts"):
        RolloutOptions(bot_action_share=0.5)

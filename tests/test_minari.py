"""Minari round trip on small datasets made here (nothing is downloaded): our thought demos
-> Minari (thoughts in infos) -> our demos, identical; a thoughtless BabyAI dataset imports
for BC and is refused for TC."""
from __future__ import annotations

import numpy as np
import pytest

from babyai.common.cli import run
from babyai.commands import make_agent_demos, minari_demos, train_bc, train_tc
from babyai.demos.episode import Episode
from babyai.demos.files import load_demos, read_demo_file
from babyai.demos.minari_io import minari_root, replay
from babyai.env.envs import make_env

minari = pytest.importorskip("minari")

ENV = "BabyAI-GoToLocal-v0"
TINY = ["--env", ENV, "--epochs", "1", "--val-episodes", "0", "--memory-dim", "16",
        "--instr-dim", "8", "--image-dim", "8", "--batch-size", "4", "--recurrence", "4",
        "--threads", "1"]


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    assert run(make_agent_demos.main, ["--env", "GoToLocal", "--episodes", "8",
                                       "--valid-episodes", "2", "--demos", "mine",
                                       "--no-progress", "--storage", str(tmp_path)]) == 0
    return tmp_path


def test_thought_demos_round_trip_through_minari(storage, capsys):
    root = ["--storage", str(storage)]
    path = minari_demos.main(["export", "--demos", "mine", "--dataset-id",
                              "babyai/gotolocal/tc-v0", *root])
    assert (path / "data" / "main_data.hdf5").is_file()
    data = minari.MinariDataset(str(path / "data"))
    first = next(data.iterate_episodes())
    original = load_demos(storage / "demos" / "mine.pkl")
    assert len(data) == 8 and first.infos["thought"][0].decode() == original[0].thoughts[0]
    assert first.observations["image"].shape == (len(original[0]) + 1, 7, 7, 3)
    assert first.rewards[-1] > 0 and first.terminations[-1]

    minari_demos.main(["import", "--dataset", "babyai/gotolocal/tc-v0", "--demos", "back",
                       "--valid-episodes", "2", *root])
    back = load_demos(storage / "demos" / "back.pkl") + load_demos(
        storage / "demos" / "back_valid.pkl")
    assert read_demo_file(storage / "demos" / "back.pkl").meta["has_thoughts"] is True
    for ours, theirs in zip(original, back):
        assert (ours.mission, ours.seed, ours.thoughts) == (theirs.mission, theirs.seed,
                                                             theirs.thoughts)
        assert np.array_equal(ours.images(), theirs.images())
        assert np.array_equal(ours.actions, theirs.actions)
        assert np.array_equal(ours.directions, theirs.directions)
    assert run(train_tc.main, ["--demos", "back", *TINY, *root]) == 0

    capsys.readouterr()  # a second export never replaces the dataset
    assert run(minari_demos.main, ["export", "--demos", "mine", "--dataset-id",
                                   "babyai/gotolocal/tc-v0", *root]) == 2
    assert run(minari_demos.main, ["import", "--dataset", "babyai/gotolocal/tc-v0",
                                   "--demos", "back", *root]) == 2
    assert run(minari_demos.main, ["import", "--dataset", "nowhere/none-v0", "--demos", "x",
                                   *root]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and "already exists" in errors[0] and "exists" in errors[1]
    assert "nothing is downloaded" in errors[2]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Minari's advice on dataset metadata
def test_thoughtless_babyai_dataset_imports_for_bc_only(storage, capsys):
    """A Minari BabyAI dataset as others make them: observations and actions, no thoughts."""
    env = make_env(ENV)
    buffers = []
    for index, episode in enumerate(load_demos(storage / "demos" / "mine.pkl")):
        fields = replay(env, episode.unpack(), index)
        del fields["infos"]
        buffers.append(minari.data_collector.EpisodeBuffer(id=index, seed=episode.seed,
                                                           **fields))
    from babyai.demos.minari_io import _spaces
    observation_space, action_space = _spaces()
    with minari_root(storage / "elsewhere"):
        minari.create_dataset_from_buffers("others/gotolocal/bc-v0", buffers, env=ENV,
                                           observation_space=observation_space,
                                           action_space=action_space, data_format="hdf5",
                                           jpeg_encoding=False, author="someone",
                                           code_permalink="none")
    path = storage / "elsewhere" / "others" / "gotolocal" / "bc-v0"
    root = ["--storage", str(storage)]
    minari_demos.main(["import", "--dataset", str(path), "--demos", "theirs", *root])
    imported = load_demos(storage / "demos" / "theirs.pkl")
    assert len(imported) == 7 and all(set(e.thoughts) == {""} for e in imported)
    capsys.readouterr()
    assert run(train_tc.main, ["--demos", "theirs", *TINY, *root]) == 2
    assert "carries no thoughts" in capsys.readouterr().err
    assert run(train_bc.main, ["--demos", "theirs", *TINY, *root]) == 0


def test_export_refuses_an_episode_that_does_not_replay(storage, capsys):
    episode = load_demos(storage / "demos" / "mine.pkl")[0].unpack()
    broken = Episode(episode.mission, episode.images, episode.directions,
                     np.roll(episode.actions, 1), episode.thoughts, episode.seed)
    from babyai.demos.files import save_demos
    save_demos(storage / "demos" / "broken.pkl", [broken, broken], {"env": ENV})
    assert run(minari_demos.main, ["export", "--demos", "broken", "--dataset-id",
                                   "x/y/z-v0", "--storage", str(storage)]) == 2
    assert "does not replay" in capsys.readouterr().err


def test_export_refuses_labels_that_are_not_the_actions_taken(storage, capsys):
    assert run(make_agent_demos.main, ["--env", "GoToLocal", "--episodes", "4",
                                       "--valid-episodes", "0", "--demos", "slips",
                                       "--slip-rate", "0.5", "--no-progress",
                                       "--storage", str(storage)]) == 0
    capsys.readouterr()
    assert run(minari_demos.main, ["export", "--demos", "slips", "--dataset-id",
                                   "x/y/z-v0", "--storage", str(storage)]) == 2
    assert "do not replay" in capsys.readouterr().err
    assert not (storage / "minari" / "x").exists()

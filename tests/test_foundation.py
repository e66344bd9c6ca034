"""Storage paths, atomic writes, environment creation, episodes and the vocabulary."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from babyai.common import storage
from babyai.env.envs import check_level, make_env
from babyai.demos.episode import Episode
from babyai.common.errors import UserError
from babyai.data.vocab import BOS, EOS, MAX_THOUGHT_TOKENS, UNK, Vocabulary


def test_storage_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(storage.STORAGE_ENV_VAR, raising=False)
    assert storage.storage_root() == storage.Path("storage")
    monkeypatch.setenv(storage.STORAGE_ENV_VAR, str(tmp_path / "env"))
    assert storage.storage_root() == tmp_path / "env"
    assert storage.storage_root(tmp_path / "flag") == tmp_path / "flag"


def test_names_resolve_under_root_paths_do_not(tmp_path):
    assert storage.demos_path("boss", tmp_path) == tmp_path / "demos" / "boss.pkl"
    assert storage.demos_path("boss", tmp_path, valid=True) == tmp_path / "demos" / "boss_valid.pkl"
    assert storage.demos_path("x/boss.pkl", tmp_path) == storage.Path("x/boss.pkl")
    assert storage.model_dir("tc", tmp_path) == tmp_path / "models" / "tc"


def test_atomic_pickle_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "a.pkl"
    storage.atomic_pickle(path, {"v": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        storage.atomic_pickle(path, Unpicklable())
    assert pickle.loads(path.read_bytes()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.pkl"]


def test_unwritable_dir_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        storage.ensure_writable_dir(blocker / "sub")


def test_make_env_is_quiet_and_checks_names(capfd):
    env = make_env("BabyAI-BossLevel-v0")
    for seed in range(30):
        env.reset(seed=seed)
    assert "Sampling rejected" not in capfd.readouterr().out
    with pytest.raises(UserError, match="unknown level"):
        check_level("BabyAI-NoSuchLevel-v0")


def test_episode_round_trips_original_tuple():
    rng = np.random.default_rng(0)
    episode = Episode("go to the red ball", rng.integers(0, 3, (4, 7, 7, 3)), [0, 1, 2, 3],
                      [2, 2, 1, 6], ["go to red ball to complete GoTo mission"] * 4, 7)
    again = Episode.from_original(pickle.loads(pickle.dumps(episode.to_original())))
    assert again.mission == episode.mission and again.seed == 7
    np.testing.assert_array_equal(again.images, episode.images)
    np.testing.assert_array_equal(again.actions, episode.actions)
    assert again.thoughts == episode.thoughts
    with pytest.raises(ValueError, match="T=1"):
        Episode("m", np.zeros((2, 7, 7, 3)), [0, 0], [1], ["a", "b"], 0)


def test_vocabulary_is_frozen_and_round_trips():
    vocab = Vocabulary.build(["pick up the red ball", "explore unseen area"])
    size = len(vocab)
    assert vocab.encode("pick up the zebra")[-1] == UNK
    assert len(vocab) == size
    tokens = vocab.encode_thought("explore unseen area")
    assert tokens[0] == BOS and tokens[-1] == EOS
    assert vocab.decode(tokens) == "explore unseen area"
    assert len(vocab.encode_thought(" ".join(["red"] * 40))) == MAX_THOUGHT_TOKENS + 1
    assert Vocabulary.from_list(vocab.to_list()) == vocab


def _episode(seed: int, length: int = 3) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode("open the red door", rng.integers(0, 3, (length, 7, 7, 3)),
                   [0] * length, [2] * (length - 1) + [5], ["open red door"] * length, seed)


def test_demo_files_round_trip_both_layouts(tmp_path):
    from babyai.demos.files import PackedEpisode, load_demos, read_demo_file, save_demos, save_original

    episodes = [_episode(seed) for seed in range(3)]
    save_demos(tmp_path / "ours.pkl", episodes, meta={"env": "BabyAI-Test"})
    save_original(tmp_path / "orig.pkl", episodes)
    ours, original = read_demo_file(tmp_path / "ours.pkl"), read_demo_file(tmp_path / "orig.pkl")
    assert ours.meta["env"] == "BabyAI-Test"
    assert isinstance(pickle.loads((tmp_path / "orig.pkl").read_bytes()), list)
    for a, b, source in zip(ours.episodes, original.episodes, episodes):
        assert a.to_original() == b.to_original()
        np.testing.assert_array_equal(a.unpack().images, source.images)
    assert [e.seed for e in load_demos(tmp_path)] == [0, 1, 2, 0, 1, 2]
    assert isinstance(load_demos(str(tmp_path / "o*.pkl"))[0], PackedEpisode)


def test_bad_demo_files_are_user_errors(tmp_path):
    from babyai.demos.files import load_demos

    with pytest.raises(UserError, match="not found"):
        load_demos(tmp_path / "missing.pkl")
    (tmp_path / "corrupt.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="corrupt"):
        load_demos(tmp_path / "corrupt.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UserError, match="not a demonstration file"):
        load_demos(tmp_path / "other.pkl")


def test_disk_errors_become_one_line_with_advice(capsys):
    import errno

    from babyai.common.cli import run

    def full_disk(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/storage/demos/x.pkl")

    assert run(full_disk, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "free some disk space" in err and "x.pkl" in err

    def other(argv):
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError):
        run(other, [])


def test_missing_dependency_names_the_fix():
    import subprocess
    import sys

    # Pretend blosc is not installed.
    code = ("import sys, importlib.util as u; real = u.find_spec; "
            "u.find_spec = lambda n, *a: None if n == 'blosc' else real(n, *a); import babyai")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "missing dependencies: blosc" in result.stderr and "pip install -e ." in result.stderr

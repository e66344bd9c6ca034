"""No file we load may run code: crafted demo files, level sets, progress files and
checkpoints are refused (exit 2, one line) before anything in them runs, while the original
layout (plain tuples, `blosc.pack_array` images) still loads."""
from __future__ import annotations

import json
import os
import pickle

import blosc
import numpy as np
import pytest
import torch

from babyai.common.cli import run
from babyai.common.errors import UserError
from babyai.common.safe_pickle import UnsafePickleError, restricted_loads, unpack_blosc_array
from babyai.demos.files import read_demo_file, save_demos
from babyai.evaluation.level_files import read_level_set, write_level_set
from synthetic_demos import make_episode, write_demos


class Payload:
    """Pickles to a call that creates `marker` (what an attacker's file would do)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Stealthy:
    """Runs its payload and then returns real-looking data (a whole episode tuple)."""

    def __init__(self, marker, record) -> None:
        self.marker, self.record = str(marker), record

    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {self.marker}') and None or "
                       f"{self.record!r}",))


def _record(seed: int = 0) -> tuple:
    episode = make_episode(seed)
    return (episode.mission, blosc.pack_array(episode.images), episode.directions.tolist(),
            episode.actions.tolist(), list(episode.thoughts), seed)


def _hostile_demo_files(tmp_path):
    """Crafted demonstration files, each a different way in."""
    marker = tmp_path / "marker"
    good = _record()
    evil_images = blosc.compress(pickle.dumps(Payload(marker)), typesize=1)
    return marker, {
        "top level": [Payload(marker)],
        "inside an episode": [(Payload(marker), *good[1:])],
        "stealthy, returns real data": [Stealthy(marker, good[:1] + good[2:] + (0,))],
        "in the images' pack_array payload": [(good[0], evil_images, *good[2:])],
        "in our first format's meta": {"format": "thought-cloning-demos", "version": 1,
                                       "meta": {"env": Payload(marker)}, "episodes": [good]},
    }


def test_restricted_unpickler_rebuilds_data_and_refuses_code(tmp_path):
    data = {"a": [1, 2.5, "x", b"y", None, True, (3, 4)], 7: np.int64(9)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert restricted_loads(pickle.dumps(data, protocol)) == data
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        for variant in (array, np.asfortranarray(array), array.astype(np.float32)):
            back = restricted_loads(pickle.dumps(variant, protocol))
            assert back.dtype == variant.dtype and np.array_equal(back, variant)
    marker = tmp_path / "marker"
    for hostile in (Payload(marker), [1, Payload(marker)],
                    np.array([1, Payload(marker)], dtype=object)):
        with pytest.raises(UnsafePickleError):
            restricted_loads(pickle.dumps(hostile))
    assert not marker.exists()


def test_pack_array_images_decode_without_unpickling_code():
    images = make_episode(3).images
    assert np.array_equal(unpack_blosc_array(blosc.pack_array(images)), images)


@pytest.mark.parametrize("case", ["top level", "inside an episode", "stealthy, returns real data",
                                  "in the images' pack_array payload",
                                  "in our first format's meta"])
def test_hostile_demo_file_is_refused_by_training_and_visualize(tmp_path, capsys, case):
    from babyai.commands import train_tc, visualize

    marker, files = _hostile_demo_files(tmp_path)
    write_demos(tmp_path, "evil")
    path = tmp_path / "demos" / "evil.pkl"
    path.write_bytes(pickle.dumps(files[case]))
    before = {p: p.read_bytes() for p in (tmp_path / "demos").iterdir()}
    with pytest.raises(UserError, match="refused"):
        read_demo_file(path)
    capsys.readouterr()
    assert run(train_tc.main, ["--demos", "evil", "--storage", str(tmp_path), "--epochs", "1",
                               "--env", "BabyAI-GoToRedBall-v0", "--val-episodes", "0"]) == 2
    assert run(visualize.main, ["--demos", str(path), "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err and "refused" in err
    assert not marker.exists()
    assert {p: p.read_bytes() for p in (tmp_path / "demos").iterdir()} == before


def test_hostile_level_set_and_progress_file_are_refused(tmp_path, capsys):
    from babyai.commands import evaluate_levels, make_testing_levels

    marker = tmp_path / "marker"
    levels = tmp_path / "evil_levels.pkl"
    levels.write_bytes(pickle.dumps({"demo": {25: {10**12: Payload(marker)}}}))
    with pytest.raises(UserError, match="refused"):
        read_level_set(levels)
    assert run(evaluate_levels.main, ["--env", "BabyAI-GoToLocal-v0", "--model", "nothing",
                                      "--testing-levels-path", str(levels),
                                      "--storage", str(tmp_path)]) == 2
    out = tmp_path / "levels" / "x.pkl"
    out.parent.mkdir()
    partial = out.with_name("x.pkl.partial")
    partial.write_bytes(pickle.dumps({"key": (1, "BabyAI-GoToLocal-v0", 0),
                                      "measured": [Payload(marker)]}))
    assert run(make_testing_levels.main, ["--env", "GoToLocal", "--per-bin", "1",
                                          "--max-draws", "2", "--out", "x", "--quiet",
                                          "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err and "refused" in err
    assert not marker.exists() and not out.exists()


def test_hostile_checkpoint_is_refused(tmp_path, capsys):
    from babyai.commands import evaluate

    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"format": "thought-cloning-checkpoint", "version": 1, "config": {},
                "vocab": [], "state_dict": {}, "extra": {"x": Payload(marker)}}, path)
    assert run(evaluate.main, ["--env", "BabyAI-GoToLocal-v0", "--model", str(path),
                               "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused checkpoint" in err and "Traceback" not in err
    assert not marker.exists()


def test_original_layout_written_as_plain_tuples_still_loads(tmp_path):
    """What the original code wrote: pickle.dump of a list of plain tuples."""
    records = [_record(seed) for seed in range(3)]
    path = tmp_path / "original.pkl"
    with open(path, "wb") as handle:
        pickle.dump(records, handle)
    loaded = read_demo_file(path)
    assert loaded.meta == {"layout": "original"}
    for record, episode in zip(records, loaded.episodes):
        assert episode.mission == record[0] and episode.seed == record[5]
        assert episode.thoughts == record[4] and episode.actions.tolist() == record[3]
        assert np.array_equal(episode.images(), unpack_blosc_array(record[1]))


def test_our_files_hold_no_pickle(tmp_path):
    episodes = [make_episode(seed) for seed in range(3)]
    save_demos(tmp_path / "ours.pkl", episodes, {"env": "BabyAI-GoToRedBall-v0"})
    with np.load(tmp_path / "ours.pkl", allow_pickle=False) as arrays:
        assert json.loads(arrays["header"].tobytes())["version"] == 2
    back = read_demo_file(tmp_path / "ours.pkl").episodes
    assert [np.array_equal(a.images(), b.images) for a, b in zip(back, episodes)] == [True] * 3
    write_level_set(tmp_path / "levels.pkl", {"demo": {25: {10**12: {"length": 20}}},
                                              "mission": {1: {}}}, "BabyAI-X-v0", {})
    assert read_level_set(tmp_path / "levels.pkl") == {"demo": {25: {10**12: {"length": 20}}},
                                                       "mission": {1: {}}}


def test_first_version_files_still_load(tmp_path):
    """Files of this project's first format: the original tuples in a pickled dict."""
    records = [_record(seed) for seed in range(2)]
    path = tmp_path / "v1.pkl"
    path.write_bytes(pickle.dumps({"format": "thought-cloning-demos", "version": 1,
                                   "meta": {"env": "BabyAI-GoToRedBall-v0",
                                            "redrawn": [(5, "no reward")]},
                                   "episodes": records}))
    loaded = read_demo_file(path)
    assert loaded.meta["env"] == "BabyAI-GoToRedBall-v0"
    assert [e.seed for e in loaded.episodes] == [0, 1]
    levels = tmp_path / "levels_v1.pkl"
    levels.write_bytes(pickle.dumps({"demo": {25: {10**12: {"mission": "go"}}, "425+": {}},
                                     "mission": {1: {np.int64(10**12 + 1): None}}}))
    assert read_level_set(levels) == {"demo": {25: {10**12: {"mission": "go"}}, "425+": {}},
                                      "mission": {1: {10**12 + 1: None}}}


def test_overwrite_rebuilds_a_damaged_dataset(tmp_path, capsys):
    """A level set written over a dataset: generation refuses it, --overwrite rebuilds."""
    from babyai.commands import make_agent_demos

    argv = ["--env", "GoToLocal", "--episodes", "3", "--valid-episodes", "0", "--demos", "d",
            "--no-progress", "--storage", str(tmp_path)]
    assert run(make_agent_demos.main, argv) == 0
    good = (tmp_path / "demos" / "d.pkl").read_bytes()
    write_level_set(tmp_path / "demos" / "d.pkl", {"demo": {25: {1: {}}}}, "BabyAI-X-v0", {})
    assert run(make_agent_demos.main, argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run(make_agent_demos.main, [*argv, "--overwrite"]) == 0
    assert (tmp_path / "demos" / "d.pkl").read_bytes() == good

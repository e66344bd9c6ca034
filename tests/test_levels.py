"""Out-of-distribution level sets: binning, mission complexity, determinism, resume, files."""
from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import pytest
from minigrid.envs.babyai.core.verifier import (AfterInstr, AndInstr, BeforeInstr, GoToInstr,
                                                ObjDesc, OpenInstr, PickupInstr, PutNextInstr)
from minigrid.utils.baby_ai_bot import BabyAIBot

from babyai.common.seeds import LEVEL_SET_START
from babyai.evaluation import levels
from babyai.env.envs import make_env
from babyai.common.errors import UserError
from babyai.evaluation.difficulty import DEMO_LABELS, MISSION_LABELS, demo_bin, mission_complexity
from babyai.evaluation.levels import LevelSetConfig, build_level_set, read_level_set
from babyai.commands import make_testing_levels



@pytest.mark.parametrize("length,label", [
    (1, 25), (49, 25), (50, 75), (99, 75), (100, 125), (349, 325), (350, 375), (399, 375),
    (400, "425+"), (449, "425+"), (1728, "425+")])
def test_demo_bin_edges(length, label):
    assert demo_bin(length) == label


def fake_env(instrs, locked_room=None):
    return SimpleNamespace(unwrapped=SimpleNamespace(instrs=instrs, locked_room=locked_room))


def put(a, b):
    return PutNextInstr(ObjDesc(*a), ObjDesc(*b))


@pytest.mark.parametrize("instrs,raw", [
    (GoToInstr(ObjDesc("ball")), 1),
    (OpenInstr(ObjDesc("door", "red")), 1),
    (PickupInstr(ObjDesc("key", None, "left")), 2),                       # + location
    (put(("ball", "red"), ("key", "blue")), 2),                           # PutNext = 2
    (AndInstr(GoToInstr(ObjDesc("ball")), PickupInstr(ObjDesc("box"))), 3),
    (BeforeInstr(GoToInstr(ObjDesc("ball")), OpenInstr(ObjDesc("door"))), 3),
    (AfterInstr(AndInstr(GoToInstr(ObjDesc("ball", "red", "front")),
                         PickupInstr(ObjDesc("key"))),
                put(("box", None), ("door", "grey"))), 7),                # 3 + 1 putnext, and, after, loc
    (BeforeInstr(AndInstr(put(("ball", None, "left"), ("key", None, "right")),
                          put(("box", None), ("ball", None))),
                 AndInstr(put(("key", None), ("box", None)),
                          GoToInstr(ObjDesc("door")))), 12),                       # 4+3, 2 and, seq, 2 loc
])
def test_mission_complexity_table(instrs, raw):
    complexity = mission_complexity(fake_env(instrs))
    assert complexity.raw == raw
    assert complexity.level == min(raw, 9)
    assert complexity.must_unlock == 0


class Room:
    """A locked room covering x in [5, 9]."""

    def pos_inside(self, x, y):
        return 5 <= x <= 9


def described(desc, objects):
    desc.obj_set = [obj for obj, _ in objects]
    desc.obj_poss = [pos for _, pos in objects]
    return desc


def test_must_unlock_only_when_every_match_is_behind_the_locked_door():
    ball = SimpleNamespace(type="ball")
    inside = PickupInstr(described(ObjDesc("ball"), [(ball, (6, 2)), (ball, (7, 3))]))
    either = PickupInstr(described(ObjDesc("ball"), [(ball, (6, 2)), (ball, (2, 3))]))
    assert mission_complexity(fake_env(inside, Room())).must_unlock == 1
    assert mission_complexity(fake_env(inside, Room())).raw == 2
    assert mission_complexity(fake_env(either, Room())).must_unlock == 0
    assert mission_complexity(fake_env(inside, None)).must_unlock == 0
    locked = SimpleNamespace(type="door", is_locked=True)
    closed = SimpleNamespace(type="door", is_locked=False)
    assert mission_complexity(fake_env(
        OpenInstr(described(ObjDesc("door"), [(locked, (5, 1))])), Room())).must_unlock == 1
    assert mission_complexity(fake_env(
        OpenInstr(described(ObjDesc("door"), [(locked, (5, 1)), (closed, (3, 0))])),
        Room())).must_unlock == 0
    # going next to a locked door does not need it unlocked
    assert mission_complexity(fake_env(
        GoToInstr(described(ObjDesc("door"), [(locked, (5, 1))])), Room())).must_unlock == 0


def bot_length(env_name, seed):
    """An independent run of minigrid's bot: steps until the episode ends, and success."""
    env = make_env(env_name)
    env.reset(seed=seed)
    bot = BabyAIBot(env)
    steps, done, reward = 0, False, 0
    while not done:
        _, reward, terminated, truncated, _ = env.step(bot.replan())
        steps, done = steps + 1, terminated or truncated
    return steps, reward > 0


def test_seeds_land_in_the_bins_their_bot_solution_and_mission_say(tmp_path):
    config = LevelSetConfig(env="BabyAI-BossLevel-v0", per_bin=2, max_draws=25,
                            out=tmp_path / "boss.pkl")
    result = build_level_set(config, progress=False)
    stored = read_level_set(config.out)
    assert stored == result.levels
    assert list(stored["demo"]) == list(DEMO_LABELS)
    assert list(stored["mission"]) == list(MISSION_LABELS)
    kept = [(label, seed, info) for label, seeds in stored["demo"].items()
            for seed, info in seeds.items()]
    assert len(kept) >= 6
    env = make_env("BabyAI-BossLevel-v0")
    for label, seed, info in kept:
        assert seed >= LEVEL_SET_START
        length, solved = bot_length("BabyAI-BossLevel-v0", seed)
        assert solved and info["length"] == length and demo_bin(length) == label
        obs, _ = env.reset(seed=seed)
        assert info["mission"] == obs["mission"]
    for label, seeds in stored["mission"].items():
        for seed in seeds:
            env.reset(seed=seed)
            assert mission_complexity(env).level == label
    # bins keep the first seeds in seed order: nothing earlier was skipped
    assert result.draws == 25
    assert sum(len(s) for s in stored["demo"].values()) == sum(
        min(2, n) for n in result.population["demo"].values())


def test_result_does_not_depend_on_workers_and_short_bins_are_reported(tmp_path):
    one = build_level_set(LevelSetConfig(env="BabyAI-MiniBossLevel-v0", per_bin=3, max_draws=40,
                                         workers=1, out=tmp_path / "a.pkl"), progress=False)
    two = build_level_set(LevelSetConfig(env="BabyAI-MiniBossLevel-v0", per_bin=3, max_draws=40,
                                         workers=2, out=tmp_path / "b.pkl"), progress=False)
    assert one.levels == two.levels
    assert read_level_set(tmp_path / "a.pkl") == read_level_set(tmp_path / "b.pkl")
    short = one.short_bins()
    assert short["demo"]["425+"] < 3        # MiniBossLevel never needs 400 steps
    table = levels.format_table(one)
    assert "SHORT by" in table and "bins left short" in table and "425+" in table


def test_stops_when_every_bin_is_full(tmp_path, monkeypatch):
    fake = {"mission": "go to the ball", "solved": True, "complexity": {}}

    def measure(job):
        _, seed = job
        i = seed - LEVEL_SET_START
        return dict(fake, seed=seed, length=50 * (i % 9), demo_bin=demo_bin(50 * (i % 9)),
                    cognitive=1 + i % 9)

    monkeypatch.setattr(levels, "_measure", measure)
    result = build_level_set(LevelSetConfig(per_bin=2, max_draws=1000, out=tmp_path / "x.pkl"),
                             progress=False)
    assert result.draws == 18
    assert not any(result.short_bins().values())
    assert "every bin is full" in levels.format_table(result)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    config = LevelSetConfig(env="BabyAI-MiniBossLevel-v0", per_bin=2, max_draws=20,
                            out=tmp_path / "full.pkl")
    expected = build_level_set(config, progress=False).levels

    real = levels._measure
    calls = {"n": 0}

    def flaky(job):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(job)

    out = tmp_path / "resumed.pkl"
    config = LevelSetConfig(env="BabyAI-MiniBossLevel-v0", per_bin=2, max_draws=20, out=out)
    monkeypatch.setattr(levels, "_measure", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_level_set(config, progress=False)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and partial.exists()
    assert len(json.loads(partial.read_text())["measured"]) == 7
    monkeypatch.setattr(levels, "_measure", real)
    resumed = build_level_set(config, progress=False)
    assert resumed.levels == expected and resumed.draws == 20
    assert not partial.exists()


def test_read_level_set_accepts_the_original_structure_and_rejects_others(tmp_path):
    original = {"demo": {25: {3: None, 4: None}, "425+": {9: "whatever"}},
                "mission": {1: {5: (1, 2)}}}
    path = tmp_path / "orig.pkl"
    path.write_bytes(pickle.dumps(original))
    assert read_level_set(path) == original
    for bad in ({"train": {}}, [1, 2], {"demo": {25: [1, 2]}}, {"demo": {25: {"a": 1}}}):
        path.write_bytes(pickle.dumps(bad))
        with pytest.raises(UserError):
            read_level_set(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(UserError):
        read_level_set(path)
    with pytest.raises(UserError, match="does not exist"):
        read_level_set(tmp_path / "missing.pkl")


def test_script_writes_under_storage_and_prints_the_table(tmp_path, capsys):
    script = make_testing_levels
    script.main(["--env", "MiniBossLevel", "--per-bin", "1", "--max-draws", "12",
                 "--storage", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert "behavioural difficulty" in out and "cognitive difficulty" in out
    assert "paper's training range" in out
    levels_file = tmp_path / "levels" / "MiniBossLevel_testing_levels.pkl"
    assert set(read_level_set(levels_file)) == {"demo", "mission"}
    with pytest.raises(UserError, match="unknown level"):
        script.main(["--env", "NoSuchLevel", "--storage", str(tmp_path), "--quiet"])


def test_level_seeds_are_disjoint_from_demo_and_validation_seeds():
    from babyai.common.seeds import MAX_ATTEMPTS, demo_seed
    # the largest seed a dataset of < 5*10**8 episodes from base seed < 10**8 can use
    largest = demo_seed(10**8, 4 * 10**8, attempt=MAX_ATTEMPTS - 1, valid=True)
    assert largest < LEVEL_SET_START


def test_read_level_set_accepts_numpy_integer_seeds(tmp_path):
    import pickle

    import numpy as np

    from babyai.evaluation.levels import read_level_set

    path = tmp_path / "np.pkl"
    path.write_bytes(pickle.dumps({"demo": {25: {np.int64(7): None}}, "mission": {}}))
    levels = read_level_set(path)
    assert list(levels["demo"][25]) == [7] and type(next(iter(levels["demo"][25]))) is int

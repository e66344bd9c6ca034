"""Episode generation: noise segments, redraws, seeds, shards and resume at the package level."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from minigrid.core.actions import Actions

import babyai.demos.generate as generate
from babyai.demos.files import read_demo_file, save_original
from babyai.common.seeds import ATTEMPT_STRIDE, VALID_DEMO_OFFSET, demo_seed
from babyai.demos.generate import (
    GenerationConfig, RunConfig, attempt_episode, generate_demos, generate_episode, merge_shards,
    shard_path, shard_range,
)
from babyai.common.errors import UserError
from babyai.demos.episode import Episode
from babyai.env.envs import make_env
from babyai.env.thoughts import COLORS, UNKNOWN_FAMILY, thought_family

LEVEL = "BabyAI-GoToLocal-v0"


def test_noise_segments():
    segments_seen = 0
    for seed in range(6):
        episode = generate_episode("BabyAI-PutNextLocal-v0", seed, 0.3)
        assert episode is not None  # the bot recovers from noise and still succeeds
        assert all(thought_family(t) != UNKNOWN_FAMILY for t in episode.thoughts)
        previous_end = 0
        for first, length in episode.info["noise_segments"]:
            segments_seen += 1
            assert 1 <= length <= 5
            assert first >= previous_end  # segments never overlap
            steps = range(first, min(first + length, len(episode)))
            previous_end = first + length
            assert {int(episode.actions[t]) for t in steps} <= {0, 1, 2}
            thoughts = {episode.thoughts[t] for t in steps}
            assert len(thoughts) == 1  # one random thought held for the whole segment
            thought = thoughts.pop()
            if thought != "explore unseen area":
                assert any(color in thought.split() for color in COLORS)
    assert segments_seen >= 10


def test_noise_free_episode_has_no_noise_and_is_reproducible():
    episode = generate_episode(LEVEL, 4, 0.0)
    assert episode.info["noise_segments"] == []
    again = generate_episode(LEVEL, 4, 0.0)
    assert np.array_equal(episode.actions, again.actions) and episode.thoughts == again.thoughts
    noisy_a = generate_episode(LEVEL, 4, 0.5)
    noisy_b = generate_episode(LEVEL, 4, 0.5)
    assert noisy_a.thoughts == noisy_b.thoughts and np.array_equal(noisy_a.images, noisy_b.images)


def test_failures_are_reported_not_raised():
    failure = attempt_episode(LEVEL, 0, 0.0, filter_steps=1)
    assert isinstance(failure, generate.Failure) and failure.seed == 0
    assert generate_episode(LEVEL, 0, 0.0, filter_steps=1) is None


def test_seed_scheme_is_disjoint():
    assert demo_seed(7, 3) == 10
    assert demo_seed(7, 3, attempt=2) == 10 + 2 * ATTEMPT_STRIDE
    assert demo_seed(7, 3, valid=True) == 10 + VALID_DEMO_OFFSET
    train = {demo_seed(0, k, a) for k in range(1000) for a in range(3)}
    valid = {demo_seed(0, k, a, valid=True) for k in range(1000) for a in range(3)}
    assert not train & valid


def test_shard_ranges_partition_the_indices():
    ranges = [shard_range(10, i, 3) for i in range(3)]
    assert [list(r) for r in ranges] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert shard_path(Path("d/x.pkl"), 2, 3) == Path("d/x.shards/shard-0002-of-0003.pkl")


def _run(tmp_path, **overrides):
    config = GenerationConfig(env=LEVEL, episodes=6, valid_episodes=2, seed=5, noise_rate=0.05)
    run = RunConfig(demos_path=tmp_path / "demos" / "x.pkl", progress=False, log_interval=0)
    for key, value in overrides.items():
        run = RunConfig(**{**run.__dict__, key: value})
    return config, run


def test_redrawn_episodes_record_the_seed_used(tmp_path):
    config = GenerationConfig(env=LEVEL, episodes=8, valid_episodes=0, seed=0, noise_rate=0.0,
                              filter_steps=3)
    _, run = _run(tmp_path)
    summary, = generate_demos(config, run)
    content = read_demo_file(run.demos_path)
    assert summary.redrawn > 0 and len(content.meta["redrawn"]) == summary.redrawn
    for index, episode in enumerate(content.episodes):
        assert len(episode) <= 3
        assert (episode.seed - index) % ATTEMPT_STRIDE == 0
        replay = generate_episode(LEVEL, episode.seed, 0.0)  # the stored seed reproduces the episode
        assert replay.actions.tolist() == episode.actions.tolist()
    failed = {seed for seed, _ in content.meta["redrawn"]}
    assert not failed & {episode.seed for episode in content.episodes}


def test_shards_merge_into_the_single_run_file(tmp_path):
    config, run = _run(tmp_path / "single")
    generate_demos(config, run)
    _, sharded = _run(tmp_path / "sharded")
    for shard in range(3):
        generate_demos(config, RunConfig(**{**sharded.__dict__, "shard": shard, "num_shards": 3}))
    with pytest.raises(Exception):
        read_demo_file(sharded.demos_path)
    merge_shards(sharded.demos_path, 3)
    merge_shards(sharded.demos_path, 3, valid=True)
    for name in ("x.pkl", "x_valid.pkl"):
        assert (tmp_path / "single/demos" / name).read_bytes() == \
            (tmp_path / "sharded/demos" / name).read_bytes()


def test_interrupted_run_resumes_without_duplicates(tmp_path, monkeypatch):
    config, run = _run(tmp_path / "full")
    generate_demos(config, run)
    _, partial = _run(tmp_path / "cut", save_interval=2)

    real = generate.attempt_episode
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "attempt_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_demos(config, partial)
    saved = read_demo_file(partial.demos_path)  # the last save is a valid file
    assert 2 <= len(saved.episodes) < 6 and not saved.meta["complete"]
    monkeypatch.setattr(generate, "attempt_episode", real)
    generate_demos(config, partial)
    resumed = read_demo_file(partial.demos_path)
    seeds = [episode.seed for episode in resumed.episodes]
    assert len(seeds) == len(set(seeds)) == 6
    assert partial.demos_path.read_bytes() == run.demos_path.read_bytes()


def test_original_layout_round_trip(tmp_path):
    config, run = _run(tmp_path)
    generate_demos(config, run)
    ours = read_demo_file(run.demos_path).episodes
    original = tmp_path / "original.pkl"
    save_original(original, ours)
    back = read_demo_file(original)
    assert back.meta == {"layout": "original"}
    for a, b in zip(ours, back.episodes):
        assert a.to_original() == b.to_original()
        record = b.to_original()
        assert isinstance(record[1], bytes) and len(record) == 6
        episode = Episode.from_original(record)
        assert episode.images.shape == (len(a), 7, 7, 3) and episode.seed == a.seed


def _replay_with_slips(level: str, episode: Episode) -> float:
    """Replay an episode, executing a pick-up at each slip and the recorded action
    elsewhere; checks that every recorded image is what the agent saw. Returns the reward."""
    env = make_env(level)
    obs, _ = env.reset(seed=episode.seed)
    slips = set(episode.info["slips"])
    reward = 0.0
    for t in range(len(episode)):
        assert np.array_equal(obs["image"], episode.images[t])
        world = env.unwrapped
        if t in slips:
            ahead = world.grid.get(*world.front_pos)
            assert world.carrying is None and ahead is not None and ahead.can_pickup()
            assert episode.actions[t] != Actions.pickup  # the bot's label, not the slip
        obs, reward, _, _, _ = env.step(Actions.pickup if t in slips else int(episode.actions[t]))
        if t in slips:
            assert env.unwrapped.carrying is not None
    return reward


def test_slips_execute_a_wrong_pickup_and_record_the_bots_recovery():
    level = "BabyAI-PutNextLocal-v0"
    slips, recoveries = 0, 0
    for seed in range(6):
        episode = attempt_episode(level, seed, 0.0, slip_rate=0.5)
        assert isinstance(episode, Episode)  # the bot recovers and still succeeds
        assert _replay_with_slips(level, episode) > 0
        slips += len(episode.info["slips"])
        recoveries += sum(int(episode.actions[t + 1]) == Actions.drop
                          for t in episode.info["slips"] if t + 1 < len(episode))
        again = attempt_episode(level, seed, 0.0, slip_rate=0.5)
        assert again.info["slips"] == episode.info["slips"]
        assert np.array_equal(again.actions, episode.actions)
    assert slips >= 5 and recoveries >= 0.9 * slips  # minigrid's bot drops what slipped
    assert attempt_episode(level, 0, 0.0).info["slips"] == []


def test_slips_are_a_setting_of_the_file(tmp_path):
    plain = GenerationConfig(env=LEVEL, episodes=6, valid_episodes=2, seed=5, noise_rate=0.05)
    slipping = GenerationConfig(**{**plain.__dict__, "slip_rate": 0.3})
    assert "slip_rate" not in plain.meta(False)  # files made without slips keep their bytes
    assert slipping.meta(False)["slip_rate"] == 0.3 and slipping.run_id() != plain.run_id()
    _, run = _run(tmp_path)
    generate_demos(slipping, run)
    before = run.demos_path.read_bytes()
    assert read_demo_file(run.demos_path).meta["slip_rate"] == 0.3
    with pytest.raises(UserError, match="other settings"):
        generate_demos(plain, run)
    assert run.demos_path.read_bytes() == before
    _, sharded = _run(tmp_path / "sharded")
    for shard in range(2):
        generate_demos(slipping, RunConfig(**{**sharded.__dict__, "shard": shard, "num_shards": 2}))
    merge_shards(sharded.demos_path, 2)
    assert sharded.demos_path.read_bytes() == before

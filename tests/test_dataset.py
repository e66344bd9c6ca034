"""The training dataset: tokenized once, compressed in memory, batched in windows; the sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synthetic_demos import make_episode, write_demos

from babyai.data.dataset import DemoDataset, EpochSampler, batches, load_dataset
from babyai.demos.files import PackedEpisode
from babyai.common.errors import UserError
from babyai.data.vocab import PAD


@pytest.fixture(scope="module")
def episodes():
    return [make_episode(seed) for seed in range(10)]


@pytest.fixture(scope="module")
def dataset(episodes):
    return DemoDataset.from_episodes([PackedEpisode.pack(e) for e in episodes])


def test_thoughts_and_missions_tokenized_once_into_tables(dataset, episodes):
    distinct = {t for e in episodes for t in e.thoughts}
    assert len(dataset.thought_table) == len(distinct) == len(dataset.thought_texts)
    assert dataset.thought_ids.dtype == np.uint8  # a handful of thoughts: one byte per step
    for i, episode in enumerate(episodes):
        rows = dataset.thought_ids[dataset.offsets[i]:dataset.offsets[i + 1]]
        assert [dataset.vocab.decode(dataset.thought_table[r]) for r in rows] == \
            [" ".join(dataset.vocab.decode(dataset.vocab.encode_thought(t)).split())
             for t in episode.thoughts]
        assert dataset.vocab.decode(dataset.mission_table[dataset.mission_ids[i]]) == \
            episode.mission.replace(",", "")
    # only compressed images and flat arrays are kept, no per-step Python objects
    assert all(isinstance(p, bytes) for p in dataset.packed_images)
    packed = sum(len(p) for p in dataset.packed_images)
    steps = dataset.num_steps  # besides the packed images: a few bytes per step
    assert dataset.compressed_bytes() < packed + 4 * steps + 4096


def test_batch_is_time_major_longest_first_with_valid_prefix(dataset, episodes):
    batch = dataset.batch([3, 0, 7, 5])
    lengths = [len(episodes[i]) for i in batch.episodes]
    assert lengths == sorted(lengths, reverse=True) and batch.horizon == lengths[0]
    for column, episode_index in enumerate(batch.episodes):
        episode = episodes[episode_index]
        n = len(episode)
        np.testing.assert_array_equal(batch.images[:n, column], episode.images)
        np.testing.assert_array_equal(batch.actions[:n, column], episode.actions)
        assert batch.valid[:n, column].all() and not batch.valid[n:, column].any()
        assert batch.seeds[column] == episode.seed
    # the valid rows of every step are a prefix of the batch
    for t in range(batch.horizon):
        count = batch.valid[t].sum()
        assert batch.valid[t, :count].all() and not batch.valid[t, count:].any()


def test_windows_cover_every_step_including_the_last_partial_one(dataset, episodes):
    batch = dataset.batch(range(10))
    windows = list(batch.windows(4, "cpu"))
    assert len(windows) == -(-batch.horizon // 4)
    assert sum(sum(w.active) for w in windows) == batch.num_steps == dataset.num_steps
    assert windows[0].starts[0].all() and not windows[0].starts[1:].any()
    assert not any(w.starts.any() for w in windows[1:])
    for w in windows:
        assert w.images.dtype == torch.long and w.images.shape[1:] == (10, 7, 7, 3)
        # padded steps carry no thought; real steps (a prefix of each step's rows) start with <s>
        valid = torch.zeros_like(w.starts)
        for t, active in enumerate(w.active):
            valid[t, :active] = True
        assert (w.thoughts[~valid] == PAD).all()
        assert (w.thoughts[valid][:, 0] != PAD).all()


def test_sampler_is_without_replacement_across_epochs_and_resumable():
    sampler = EpochSampler(10, 4, seed=3)
    first = np.concatenate([sampler.next_epoch() for _ in range(5)])  # 20 = two passes
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    assert not np.array_equal(first[:10], first[10:])  # reshuffled per pass
    resumed = EpochSampler(10, 4, seed=3)
    resumed.load_state_dict({**sampler.state_dict(), "position": 8})
    np.testing.assert_array_equal(resumed.next_epoch(), first[8:12])
    assert EpochSampler(10, 0, seed=3).epoch_length == 10
    with pytest.raises(UserError):
        resumed.load_state_dict({**sampler.state_dict(), "num_episodes": 11})


def test_batches_keep_the_last_partial_batch():
    assert [len(b) for b in batches(np.arange(10), 4)] == [4, 4, 2]


def test_load_dataset_checks_level_and_files_and_limits(tmp_path):
    path = write_demos(tmp_path, count=6, valid_count=2, env="BabyAI-GoToRedBall-v0")
    assert len(load_dataset(path, env="BabyAI-GoToRedBall-v0", limit=4)) == 4
    with pytest.raises(UserError, match="not of BabyAI-BossLevel-v0"):
        load_dataset(path, env="BabyAI-BossLevel-v0")
    with pytest.raises(UserError, match="not found"):
        load_dataset(tmp_path / "missing.pkl")
    full = load_dataset(path)
    shared = load_dataset(path.with_name("synth_valid.pkl"), vocab=full.vocab)
    assert shared.vocab is full.vocab

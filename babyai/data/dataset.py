"""Demonstrations as a training dataset: tokenized once, compressed in memory, batched in windows.

Memory layout (what stays resident for the whole run):

* images stay blosc-compressed, one `bytes` per episode; only the episodes of the current
  batch are unpacked, so resident memory is about the compressed size of the dataset;
* actions of all episodes are one flat `uint8` array (steps of episode i are
  `offsets[i]:offsets[i+1]`);
* thoughts are few distinct sentences: a table of unique tokenized thoughts
  (`thought_table`, [U, Lt] PAD-padded `<s> words </s>`) plus one flat per-step index;
* missions likewise: a table of unique tokenized missions plus a per-episode index.

A batch holds whole episodes, sorted longest first and laid out time-major ([T, B]) with a
valid-step mask; because of the sort the valid rows of every step are a prefix of the batch,
so the trainer runs the model on the active rows only. Batches are cut into windows of
`recurrence` steps (the last, partial window is kept) and moved to tensors a window at a time.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from babyai.demos.checks import EpisodeError, decompress_images
from babyai.demos.files import PackedEpisode, demo_files, read_demo_file
from babyai.demos.episode import Episode
from babyai.common.errors import UserError
from babyai.data.batch import Batch
from babyai.data.vocab import PAD, Vocabulary

log = logging.getLogger(__name__)

LEVEL_META_KEYS = ("env", "level", "env_name")
"""Keys under which a demo file's metadata may name its level."""


def _smallest_uint(max_value: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


class _Interner:
    """Maps strings to dense indices in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.index)
        return found

    def texts(self) -> list[str]:
        return list(self.index)


NO_ACTION = 255
"""The action of a step whose action is not imitated (see `load_dataset(thoughts_only=...)`):
the loss counts its thought and skips its action."""


class _Builder:
    """Accumulates episodes in compact form; strings are interned, tokenized at the end."""

    def __init__(self) -> None:
        self.packed: list[bytes] = []
        self.lengths: list[int] = []
        self.actions: list[np.ndarray] = []
        self.thought_ids: list[np.ndarray] = []
        self.mission_ids: list[int] = []
        self.seeds: list[int] = []
        self.thoughts = _Interner()
        self.missions = _Interner()

    def add(self, episode: PackedEpisode | Episode, actions: bool = True) -> None:
        if isinstance(episode, Episode):
            episode = PackedEpisode.pack(episode)
        length = len(episode)
        if length == 0:
            raise UserError(f"demonstration with seed {episode.seed} has no steps")
        self.packed.append(episode.packed_images)
        self.lengths.append(length)
        self.actions.append(np.asarray(episode.actions, dtype=np.uint8) if actions
                            else np.full(length, NO_ACTION, dtype=np.uint8))
        self.thought_ids.append(np.fromiter((self.thoughts(t) for t in episode.thoughts),
                                            dtype=np.int64, count=length))
        self.mission_ids.append(self.missions(episode.mission))
        self.seeds.append(int(episode.seed))

    def build(self, vocab: Vocabulary | None) -> "DemoDataset":
        if not self.packed:
            raise UserError("the demonstration dataset is empty")
        thought_texts, mission_texts = self.thoughts.texts(), self.missions.texts()
        if vocab is None:
            vocab = Vocabulary.build(mission_texts + thought_texts)
        token_dtype = _smallest_uint(len(vocab))
        thought_rows = [vocab.encode_thought(text) for text in thought_texts]
        thought_table = np.full((len(thought_rows), max(map(len, thought_rows))), PAD, np.int64)
        for row, ids in enumerate(thought_rows):
            thought_table[row, : len(ids)] = ids
        mission_rows = [vocab.encode(text) or [PAD] for text in mission_texts]
        mission_table = np.full((len(mission_rows), max(map(len, mission_rows))), PAD, token_dtype)
        for row, ids in enumerate(mission_rows):
            mission_table[row, : len(ids)] = ids
        offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        return DemoDataset(
            vocab=vocab,
            packed_images=self.packed,
            offsets=offsets,
            actions=np.concatenate(self.actions),
            thought_ids=np.concatenate(self.thought_ids).astype(_smallest_uint(len(thought_rows))),
            thought_table=thought_table,
            thought_texts=thought_texts,
            mission_table=mission_table,
            mission_ids=np.asarray(self.mission_ids, dtype=np.int64),
            seeds=np.asarray(self.seeds, dtype=np.int64),
        )


@dataclass
class DemoDataset:
    """Tokenized demonstrations with images kept compressed.

    Attributes:
        vocab: the frozen vocabulary used to tokenize (built from this data unless given).
        packed_images: N blosc-compressed raw [T_i, 7, 7, 3] uint8 arrays.
        offsets: [N + 1] int64; steps of episode i are `offsets[i]:offsets[i+1]`.
        actions: [S] uint8, every step's demonstrated action.
        thought_ids: [S] unsigned, row of `thought_table` of every step's thought.
        thought_table: [U, Lt] int64, unique thoughts as `<s> words </s>` PAD-padded.
        thought_texts: the U unique thought strings (for messages and tests).
        mission_table: [M, Lm] unsigned, unique missions' word ids, PAD-padded.
        mission_ids: [N] int64, row of `mission_table` of each episode.
        seeds: [N] int64, environment seeds of the episodes.
        thought_weights: [U] float32 weight of each row of `thought_table` in the thought
            loss (see babyai.training.thought_weights), or None: every thought weighs 1.
    """

    vocab: Vocabulary
    packed_images: list[bytes]
    offsets: np.ndarray
    actions: np.ndarray
    thought_ids: np.ndarray
    thought_table: np.ndarray
    thought_texts: list[str]
    mission_table: np.ndarray
    mission_ids: np.ndarray
    seeds: np.ndarray
    thought_weights: np.ndarray | None = None

    @classmethod
    def from_episodes(cls, episodes: Iterable[PackedEpisode | Episode],
                      vocab: Vocabulary | None = None) -> "DemoDataset":
        builder = _Builder()
        for episode in episodes:
            builder.add(episode)
        return builder.build(vocab)

    def __len__(self) -> int:
        return len(self.packed_images)

    @property
    def lengths(self) -> np.ndarray:
        """[N] number of steps of each episode."""
        return np.diff(self.offsets)

    @property
    def num_steps(self) -> int:
        return int(self.offsets[-1])

    def compressed_bytes(self) -> int:
        """Approximate resident size of the dataset (packed images plus the flat arrays)."""
        return (sum(len(p) for p in self.packed_images) + self.actions.nbytes
                + self.thought_ids.nbytes + self.thought_table.nbytes
                + self.mission_table.nbytes + self.mission_ids.nbytes + self.seeds.nbytes
                + self.offsets.nbytes)

    def batch(self, indices: Sequence[int]) -> "Batch":
        """Unpack the episodes `indices` into one time-major batch, longest episode first."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        order = np.argsort(-lengths, kind="stable")
        indices, lengths = indices[order], lengths[order]
        batch_size = len(indices)
        horizon = int(lengths.max()) if batch_size else 0
        images = np.zeros((horizon, batch_size, 7, 7, 3), dtype=np.uint8)
        actions = np.zeros((horizon, batch_size), dtype=np.int64)
        thought_rows = np.zeros((horizon, batch_size), dtype=np.int64)
        valid = np.zeros((horizon, batch_size), dtype=bool)
        for column, (episode, length) in enumerate(zip(indices, lengths)):
            start, stop = self.offsets[episode], self.offsets[episode + 1]
            try:
                unpacked = decompress_images(self.packed_images[episode], int(length))
            except EpisodeError as error:
                raise UserError(f"demonstration with seed {self.seeds[episode]}: {error}") from error
            if unpacked.shape != (length, 7, 7, 3):
                raise UserError(f"demonstration with seed {self.seeds[episode]}: images have "
                                f"shape {unpacked.shape}, expected ({length}, 7, 7, 3)")
            images[:length, column] = unpacked
            actions[:length, column] = self.actions[start:stop]
            thought_rows[:length, column] = self.thought_ids[start:stop]
            valid[:length, column] = True
        mission_rows = self.mission_table[self.mission_ids[indices]].astype(np.int64)
        width = max(int((mission_rows != PAD).sum(axis=1).max()) if batch_size else 1, 1)
        return Batch(images=images, actions=actions, thought_rows=thought_rows, valid=valid,
                     missions=mission_rows[:, :width], thought_table=self.thought_table,
                     episodes=indices, seeds=self.seeds[indices], lengths=lengths,
                     thought_weights=self.thought_weights)


class EpochSampler:
    """Which episodes each epoch trains on.

    The dataset is visited in a stream of shuffled passes (pass k is a permutation drawn from
    `(seed, k)`); epoch e takes stream positions `[e*L, (e+1)*L)` with L = `epoch_length`.
    So episodes are sampled without replacement across epochs until the dataset is
    exhausted, and the sampler is a pure function of its position: resuming needs only the
    position (saved in checkpoints as `state_dict()`).
    """

    def __init__(self, num_episodes: int, epoch_length: int | None, seed: int,
                 position: int = 0) -> None:
        if num_episodes <= 0:
            raise UserError("cannot sample from an empty dataset")
        self.num_episodes = num_episodes
        self.epoch_length = epoch_length or num_episodes
        self.seed = seed
        self.position = position
        self._cache: dict[int, np.ndarray] = {}

    def _permutation(self, pass_index: int) -> np.ndarray:
        if pass_index not in self._cache:
            rng = np.random.default_rng([self.seed, pass_index])
            self._cache = {pass_index: rng.permutation(self.num_episodes)}
        return self._cache[pass_index]

    def indices_at(self, position: int, count: int) -> np.ndarray:
        """`count` episode indices of the stream starting at `position`."""
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            pass_index, offset = divmod(position + filled, self.num_episodes)
            take = min(count - filled, self.num_episodes - offset)
            out[filled:filled + take] = self._permutation(pass_index)[offset:offset + take]
            filled += take
        return out

    def next_epoch(self) -> np.ndarray:
        """The episodes at the current position; advances the position by one epoch."""
        indices = self.indices_at(self.position, self.epoch_length)
        self.position += self.epoch_length
        return indices

    def state_dict(self) -> dict:
        return {"seed": self.seed, "position": self.position, "epoch_length": self.epoch_length,
                "num_episodes": self.num_episodes}

    def load_state_dict(self, state: dict) -> None:
        if state["num_episodes"] != self.num_episodes or state["epoch_length"] != self.epoch_length:
            raise UserError("the saved sampler state belongs to a different dataset or epoch "
                            f"length ({state['num_episodes']} episodes, epoch length "
                            f"{state['epoch_length']})")
        self.seed, self.position = state["seed"], state["position"]


def batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of an epoch's indices; the last one may be smaller."""
    return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]


def _file_level(meta: dict) -> str | None:
    for key in LEVEL_META_KEYS:
        if meta.get(key):
            return str(meta[key])
    return None


def load_dataset(source: str | os.PathLike | Sequence[str | os.PathLike], *,
                 env: str | None = None, vocab: Vocabulary | None = None,
                 limit: int | None = None,
                 thoughts_only: str | os.PathLike | Sequence[str | os.PathLike] = ()
                 ) -> DemoDataset:
    """Read demonstrations file by file into a :class:`DemoDataset`.

    Args:
        source: a file, a shard directory, a glob or a list of those.
        env: if given, a file whose metadata names another level is a :class:`UserError`.
        vocab: tokenize with this vocabulary (else one is built from these demos).
        limit: use only the first `limit` episodes.
        thoughts_only: more files, read after `source`, whose actions are replaced by
            NO_ACTION: their steps train the thought loss only.
    """
    builder = _Builder()
    extra = demo_files(thoughts_only) if thoughts_only else []
    for path, actions in [(p, True) for p in demo_files(source)] + [(p, False) for p in extra]:
        if limit is not None and len(builder.packed) >= limit:
            break
        demo_file = read_demo_file(path)
        level = _file_level(demo_file.meta)
        if env is not None and level is not None and level != env:
            raise UserError(f"{path} holds demonstrations of {level}, not of {env} "
                            "(check --env and --demos)")
        for episode in demo_file.episodes:
            if limit is not None and len(builder.packed) >= limit:
                break
            builder.add(episode, actions)
        del demo_file
    dataset = builder.build(vocab)
    log.info("loaded %d episodes (%d steps, %d distinct thoughts, %.1f MB resident) from %s",
             len(dataset), dataset.num_steps, len(dataset.thought_texts),
             dataset.compressed_bytes() / 1e6,
             f"{source} (thoughts only: {thoughts_only})" if thoughts_only else source)
    return dataset

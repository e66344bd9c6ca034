"""Lanes: an epoch's episodes as `lanes` continuous streams, cut into constant-size batches.

Why: in the per-episode layout a batch runs as many sequential steps as its LONGEST episode,
and rows go idle as shorter episodes end (on MiniBossLevel a batch of 32 averages ~30 steps
per episode but runs ~100 steps, the last ones on 1-3 rows). Sequential steps, not rows,
are what a small model on a CPU pays for, and BatchNorm's running statistics suffer from
the nearly empty steps. Here the epoch's episodes are dealt to lanes longest first, each to
the lane with the fewest steps so far (so lanes end within a few steps of each other: dealt
in sampled order instead, they ended up to ~100 steps apart and the epoch closed on a long
tail of 1-row steps, which spoiled BatchNorm's running statistics), then the order inside
each lane is shuffled; batch k is steps `[k*H, (k+1)*H)` of every lane.
So every step runs full rows (except near the epoch's end), a batch holds `lanes * H` steps,
and H is chosen so an epoch has as many batches (optimizer steps) as the per-episode layout.

An episode may continue into the next batch: the trainer carries each lane's memory
(detached) from batch to batch, exactly as it does from window to window, and resets it
where an episode starts. Lanes are ordered by total length, longest first, so the rows
still active at any step are a prefix (as the window code expects).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from babyai.common.errors import UserError
from babyai.data.batch import Batch
from babyai.data.dataset import DemoDataset
from babyai.data.vocab import PAD
from babyai.demos.checks import EpisodeError, decompress_images


@dataclass
class LanePlan:
    """Which episodes each lane streams, and how the streams are cut into batches.

    Attributes:
        lanes: per lane, the dataset indices of its episodes in order (longest lane first).
        starts: per lane, the step at which each of its episodes starts, plus its total.
        steps: steps per batch (H).
    """

    lanes: list[np.ndarray]
    starts: list[np.ndarray]
    steps: int

    @classmethod
    def build(cls, indices: np.ndarray, lengths: np.ndarray, lanes: int,
              batches: int, seed: int = 0) -> "LanePlan":
        """Balanced plan: longest episode first, each to the shortest lane so far; then the
        order inside each lane is shuffled with `seed`.

        Args:
            indices: the epoch's episode indices.
            lengths: their lengths.
            lanes: number of lanes (the batch size).
            batches: number of batches wanted (H = ceil(longest lane / batches)).
            seed: seed of the order inside the lanes.
        """
        if lanes <= 0 or batches <= 0:
            raise ValueError("lanes and batches must be positive")
        members: list[list[int]] = [[] for _ in range(lanes)]
        heap = [(0, lane) for lane in range(lanes)]
        order = np.argsort(-np.asarray(lengths), kind="stable")
        for episode, length in zip(np.asarray(indices)[order].tolist(),
                                   np.asarray(lengths)[order].tolist()):
            total, lane = heapq.heappop(heap)
            members[lane].append(episode)
            heapq.heappush(heap, (total + int(length), lane))
        rng = np.random.default_rng(seed)
        for lane in members:
            rng.shuffle(lane)
        totals = {lane: total for total, lane in heap}
        order = sorted(range(lanes), key=lambda lane: -totals[lane])
        length_of = dict(zip(np.asarray(indices).tolist(), np.asarray(lengths).tolist()))
        plan_lanes, plan_starts = [], []
        for lane in order:
            episodes = np.asarray(members[lane], dtype=np.int64)
            starts = np.zeros(len(episodes) + 1, dtype=np.int64)
            np.cumsum([length_of[e] for e in members[lane]], out=starts[1:])
            plan_lanes.append(episodes)
            plan_starts.append(starts)
        longest = int(plan_starts[0][-1]) if plan_starts else 0
        return cls(plan_lanes, plan_starts, max(math.ceil(longest / batches), 1))

    @property
    def totals(self) -> np.ndarray:
        """Steps of each lane."""
        return np.asarray([int(s[-1]) for s in self.starts], dtype=np.int64)

    def __len__(self) -> int:
        """Number of batches."""
        return math.ceil(int(self.totals.max(initial=0)) / self.steps)

    def batch_steps(self, number: int) -> int:
        """Valid steps of batch `number` over all lanes (the loss denominator)."""
        begin = number * self.steps
        return int(np.clip(self.totals - begin, 0, self.steps).sum())

    def batch(self, data: DemoDataset, number: int, lanes: slice | np.ndarray | None = None) -> Batch:
        """Steps `[number*H, (number+1)*H)` of the lanes `lanes` (default: all) as a Batch."""
        selected = np.arange(len(self.lanes))[lanes if lanes is not None else slice(None)]
        begin = number * self.steps
        lengths = np.clip(self.totals[selected] - begin, 0, self.steps)
        horizon, rows = int(lengths.max(initial=0)), len(selected)
        images = np.zeros((horizon, rows, 7, 7, 3), dtype=np.uint8)
        actions = np.zeros((horizon, rows), dtype=np.int64)
        thought_rows = np.zeros((horizon, rows), dtype=np.int64)
        starts = np.zeros((horizon, rows), dtype=bool)
        mission_index = np.zeros((horizon, rows), dtype=np.int64)
        episodes: list[int] = []
        end = begin + horizon
        for column, lane in enumerate(selected.tolist()):
            members, offsets = self.lanes[lane], self.starts[lane]
            first = int(np.searchsorted(offsets, begin, side="right")) - 1
            for k in range(max(first, 0), len(members)):
                if offsets[k] >= end:
                    break
                episode = int(members[k])
                lo, hi = max(int(offsets[k]), begin), min(int(offsets[k + 1]), end)
                skip = lo - int(offsets[k])
                step, stop = int(data.offsets[episode]) + skip, int(data.offsets[episode]) + hi - int(offsets[k])
                images[lo - begin:hi - begin, column] = _unpack(data, episode)[skip:skip + hi - lo]
                actions[lo - begin:hi - begin, column] = data.actions[step:stop]
                thought_rows[lo - begin:hi - begin, column] = data.thought_ids[step:stop]
                mission_index[lo - begin:hi - begin, column] = len(episodes)
                if skip == 0:
                    starts[lo - begin, column] = True
                episodes.append(episode)
        valid = np.arange(horizon)[:, None] < lengths[None, :]
        chosen = np.asarray(episodes, dtype=np.int64)
        missions = data.mission_table[data.mission_ids[chosen]].astype(np.int64)
        width = max(int((missions != PAD).sum(axis=1).max()) if len(chosen) else 1, 1)
        return Batch(images=images, actions=actions, thought_rows=thought_rows, valid=valid,
                     missions=missions[:, :width], thought_table=data.thought_table,
                     episodes=chosen, seeds=data.seeds[chosen], lengths=lengths,
                     starts=starts, mission_index=mission_index,
                     thought_weights=data.thought_weights)


def _unpack(data: DemoDataset, episode: int) -> np.ndarray:
    length = int(data.offsets[episode + 1] - data.offsets[episode])
    try:
        images = decompress_images(data.packed_images[episode], length)
    except EpisodeError as error:
        raise UserError(f"demonstration with seed {data.seeds[episode]}: {error}") from error
    if images.shape != (length, 7, 7, 3):
        raise UserError(f"demonstration with seed {data.seeds[episode]}: images have "
                        f"shape {images.shape}, expected ({length}, 7, 7, 3)")
    return images

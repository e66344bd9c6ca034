"""A batch of demonstrations as the trainer consumes it: time-major arrays cut into windows.

Two layouts share these types. The per-episode layout (:meth:`DemoDataset.batch`) puts one
whole episode in each row, longest first. The lane layout (:mod:`babyai.data.lanes`) puts a
continuous stream of episodes in each row, so `starts` marks episode starts anywhere and
`mission_index` says which of the batch's missions each (step, row) belongs to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
import torch

from babyai.data.vocab import PAD

class Window(NamedTuple):
    """`recurrence` (or fewer) consecutive steps of a batch, as tensors on the device.

    Attributes:
        images: [R, B, 7, 7, 3] long observation codes.
        actions: [R, B] long demonstrated actions (0 on padded steps).
        thoughts: [R, B, Lt] long `<s> words </s>` thought tokens, PAD-padded (all PAD on
            padded steps); Lt is the longest thought of the window.
        thought_table: [U, Lt] long, the window's distinct thoughts (U is small: thoughts
            repeat within and across episodes), so a trainer can encode each once.
        thought_index: [R, B] long row of `thought_table` of every step (0 on padded steps):
            `thought_table[thought_index] == thoughts` on valid steps.
        starts: [R, B] bool, True where an episode starts (memory must be reset).
        active: R ints, number of valid rows of each step (they are a prefix of the batch).
        has_start: R bools, whether any row of the step starts an episode (host-side copy
            of `starts.any(1)`, so the trainer needs no device sync to check it).
        mission_index: [R, B] long row of the batch's missions of every step (lanes), or
            None: row b's mission is mission b (per-episode layout).
        thought_weights: [R, B] float weight of every step's thought NLL (0 on padded
            steps), or None: every thought weighs 1.
    """

    images: torch.Tensor
    actions: torch.Tensor
    thoughts: torch.Tensor
    thought_table: torch.Tensor
    thought_index: torch.Tensor
    starts: torch.Tensor
    active: list[int]
    has_start: list[bool]
    mission_index: torch.Tensor | None = None
    thought_weights: torch.Tensor | None = None


@dataclass
class Batch:
    """Time-major, padded rows of demonstration steps (numpy, on the host); the valid steps
    of every row are a prefix of it, and rows are ordered longest first.

    Attributes:
        images: [T, B, 7, 7, 3] uint8.
        actions: [T, B] int64.
        thought_rows: [T, B] int64 rows of `thought_table`.
        valid: [T, B] bool.
        missions: [E, Lm] int64 word ids, PAD-padded: the mission of each of `episodes`.
        thought_table: [U, Lt] the dataset's unique thoughts.
        episodes: [E] dataset indices; seeds: [E] env seeds; lengths: [B] valid steps per row.
        starts: [T, B] bool episode starts (lanes), or None: every row starts at step 0.
        mission_index: [T, B] int64 row of `missions` (lanes), or None: row b is episode b.
        thought_weights: [U] float32 thought-loss weight of each row of `thought_table`, or
            None (all 1).
    """

    images: np.ndarray
    actions: np.ndarray
    thought_rows: np.ndarray
    valid: np.ndarray
    missions: np.ndarray
    thought_table: np.ndarray
    episodes: np.ndarray
    seeds: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray | None = None
    mission_index: np.ndarray | None = None
    thought_weights: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.lengths)

    @property
    def horizon(self) -> int:
        return self.images.shape[0]

    @property
    def num_steps(self) -> int:
        return int(self.lengths.sum())

    def mission_tensor(self, device: torch.device | str) -> torch.Tensor:
        return torch.from_numpy(self.missions).to(device)

    def windows(self, recurrence: int, device: torch.device | str) -> Iterator[Window]:
        """Consecutive windows of `recurrence` steps; the last one may be shorter."""
        for start in range(0, self.horizon, recurrence):
            stop = min(start + recurrence, self.horizon)
            valid = self.valid[start:stop]
            distinct, index = np.unique(self.thought_rows[start:stop][valid], return_inverse=True)
            table = self.thought_table[distinct]
            width = max(int((table != PAD).sum(axis=-1).max()) if len(table) else 0, 2)
            table = np.ascontiguousarray(table[:, :width])
            thought_index = np.zeros(valid.shape, dtype=np.int64)
            thought_index[valid] = index.reshape(-1)
            thoughts = table[thought_index] * valid[..., None]
            if self.starts is not None:
                starts = self.starts[start:stop]
            else:
                starts = np.zeros_like(valid)
                if start == 0:
                    starts[0] = True
            weights = None
            if self.thought_weights is not None:
                row_weights = self.thought_weights[distinct] if len(distinct) else np.zeros(1)
                step_weights = row_weights[thought_index] * valid
                weights = torch.from_numpy(step_weights.astype(np.float32)).to(device)
            mission_index = None
            if self.mission_index is not None:
                mission_index = torch.from_numpy(self.mission_index[start:stop]).to(device)
            yield Window(
                images=torch.from_numpy(self.images[start:stop]).to(device).long(),
                actions=torch.from_numpy(self.actions[start:stop]).to(device),
                thoughts=torch.from_numpy(thoughts).to(device),
                thought_table=torch.from_numpy(table).to(device),
                thought_index=torch.from_numpy(thought_index).to(device),
                starts=torch.from_numpy(starts).to(device),
                active=valid.sum(axis=1).tolist(),
                has_start=starts.any(axis=1).tolist(),
                mission_index=mission_index,
                thought_weights=weights,
            )

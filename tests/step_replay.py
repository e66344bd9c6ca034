"""One training step of a tiny TC run, then the same batch replayed window by window.

The tests of the extra loss terms (counterfactual, binding) check that the trainer's loss
equals the terms computed directly from `run_window`'s outputs. Both need the same set-up:
the thought swap made deterministic, the optimizer step skipped, and the BatchNorm buffers
put back after the step so the replay normalises as the step did.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch

from synthetic_demos import write_demos

from babyai.data.batch import Batch
from babyai.training import step as step_module
from babyai.training.config import TrainConfig
from babyai.training.counterfactual import ThoughtSwap
from babyai.training.loss import LossParts, imitation_loss
from babyai.training.trainer import Trainer
from babyai.training.window import WindowOutput, run_window

ENV = "BabyAI-GoToRedBall-v0"
RECURRENCE = 4


def step_once(root, monkeypatch, swap_method: str, **config: Any
              ) -> tuple[Trainer, Batch, dict[str, float]]:
    """Train one batch of 14 synthetic demos (no optimizer step) with `ThoughtSwap.<swap_method>`
    drawing the same swap call after call; returns the trainer with its BatchNorm buffers
    as they were before the step, the batch and the step's metrics."""
    write_demos(root, count=14, valid_count=4)
    drawn = getattr(ThoughtSwap, swap_method)
    monkeypatch.setattr(ThoughtSwap, swap_method, lambda self, thoughts, generator=None: drawn(
        self, thoughts, torch.Generator().manual_seed(0)))
    monkeypatch.setattr(step_module, "THOUGHT_CHUNK", 7)
    torch.manual_seed(0)
    trainer = Trainer(TrainConfig(env=ENV, demos="synth", storage=str(root), memory_dim=24,
                                  instr_dim=16, image_dim=16, batch_size=6,
                                  recurrence=RECURRENCE, conv_precision="fp32", val_episodes=0,
                                  device="cpu", dropout=0.0, max_grad_norm=1e9,
                                  layout="episodes", **config))
    monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
    initial = {name: buffer.clone() for name, buffer in trainer.agent.named_buffers()}
    batch = trainer.train_data.batch(range(14))
    metrics = trainer.train_batch(batch, True, batch.num_steps)
    for name, buffer in trainer.agent.named_buffers():  # replay from the same statistics
        buffer.copy_(initial[name])
    return trainer, batch, metrics


@torch.no_grad()
def replay(trainer: Trainer, batch: Batch, **window_options: Any
           ) -> Iterator[tuple[WindowOutput, LossParts]]:
    """Each window of `batch` run again (teacher-forced, `run_window(..., **window_options)`),
    with its imitation loss over the batch's steps (sg-coef 2, the trainer's default)."""
    agent = trainer.agent
    memory, missions = agent.initial_memory(len(batch)), batch.mission_tensor("cpu")
    for window in batch.windows(RECURRENCE, "cpu"):
        output, memory = run_window(agent, window, missions, memory, True, **window_options)
        yield output, imitation_loss(output.action_logits, output.actions,
                                     output.thought_logits, output.thought_targets,
                                     sg_coef=2.0, denominator=batch.num_steps)

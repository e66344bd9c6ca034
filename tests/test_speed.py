"""Speed-ups leave the loss and the gradients of a batch unchanged (stated tolerances)."""
from __future__ import annotations

import pytest
import torch

from synthetic_demos import write_demos

from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

ENV = "BabyAI-GoToRedBall-v0"
TINY = dict(env=ENV, memory_dim=24, instr_dim=16, image_dim=16, batch_size=6, recurrence=4,
            val_episodes=0, max_grad_norm=1e9)


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    write_demos(tmp_path, count=8, valid_count=2)
    trainer = Trainer(TrainConfig(**TINY, demos="synth", storage=str(tmp_path)))
    monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
    return trainer


def _loss_and_grads(trainer: Trainer, teacher_forcing: bool) -> tuple[float, dict]:
    torch.manual_seed(3)  # same dropout masks in both runs
    batch = trainer.train_data.batch(range(6))
    metrics = trainer.train_batch(batch, teacher_forcing, batch.num_steps)
    grads = {n: p.grad.clone() for n, p in trainer.agent.named_parameters() if p.grad is not None}
    return metrics["loss"], grads


def test_thought_table_encoding_leaves_loss_and_gradients_unchanged(trainer, monkeypatch):
    """Encoding each distinct thought of a window once and gathering == encoding every step's."""
    calls = []
    encode = trainer.agent.encode_thought_table
    monkeypatch.setattr(trainer.agent, "encode_thought_table",
                        lambda table, index: calls.append(len(table)) or encode(table, index))
    loss, grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert calls and max(calls) < 6 * 4  # fewer distinct thoughts than steps in a window
    monkeypatch.setattr(trainer.agent, "encode_thought_table", lambda table, index: None)
    per_step_loss, per_step_grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert loss == pytest.approx(per_step_loss, rel=1e-6, abs=1e-6)
    assert grads.keys() == per_step_grads.keys() and "thought_encoder.gru.weight_hh_l0" in grads
    for name in grads:
        torch.testing.assert_close(grads[name], per_step_grads[name], atol=1e-6, rtol=1e-5,
                                   msg=name)

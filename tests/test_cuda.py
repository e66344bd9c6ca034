"""The GPU path: training (float16 mixed precision), checkpoints and RL fine-tuning on CUDA.

Skipped where no GPU is present (CI); run them on a GPU machine with `pytest tests/test_cuda.py`.
"""
from __future__ import annotations

import pytest
import torch

from synthetic_demos import write_demos
from test_rl import _argv, run_root  # noqa: F401  (run_root is a fixture)

from babyai.agent.checkpoint import load_checkpoint
from babyai.commands import train_rl, train_tc
from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ENV = "BabyAI-GoToRedBall-v0"
TINY = dict(env=ENV, memory_dim=24, instr_dim=16, image_dim=16, batch_size=6, recurrence=4,
            val_episodes=0, max_grad_norm=1e9, dropout=0.0, demos="synth")


def _loss_and_gradient(trainer: Trainer) -> tuple[float, torch.Tensor]:
    trainer.optimizer.step = lambda *args, **kwargs: None
    batch = trainer.train_data.batch(range(6))
    metrics = trainer.train_batch(batch, True, batch.num_steps)
    grads = [p.grad.float().cpu().flatten() for p in trainer.agent.parameters() if p.grad is not None]
    return metrics["loss"], torch.cat(grads)


def test_a_batch_on_the_gpu_matches_the_cpu_within_mixed_precision(tmp_path):
    """Same weights, same batch: float16 autocast changes the loss by well under 1% and
    leaves the whole gradient's direction (cosine > 0.99)."""
    write_demos(tmp_path, count=8, valid_count=2)
    on_cpu = Trainer(TrainConfig(**TINY, storage=str(tmp_path), device="cpu"))
    on_gpu = Trainer(TrainConfig(**TINY, storage=str(tmp_path), device="cuda"))
    on_gpu.agent.load_state_dict(on_cpu.agent.state_dict())
    cpu_loss, cpu_grad = _loss_and_gradient(on_cpu)
    gpu_loss, gpu_grad = _loss_and_gradient(on_gpu)
    assert next(on_gpu.agent.parameters()).is_cuda
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-2)
    assert torch.nn.functional.cosine_similarity(cpu_grad, gpu_grad, dim=0) > 0.99


def test_training_on_the_gpu_writes_a_checkpoint_that_loads_on_a_cpu(tmp_path):
    write_demos(tmp_path, count=12, valid_count=2)
    summary = train_tc.main(["--demos", "synth", "--env", ENV, "--storage", str(tmp_path),
                             "--model", "gpu", "--memory-dim", "24", "--instr-dim", "16",
                             "--image-dim", "16", "--batch-size", "6", "--recurrence", "4",
                             "--epochs", "2", "--val-episodes", "2", "--device", "cuda"])
    assert summary.epochs_done == 2
    checkpoint = load_checkpoint(tmp_path / "models" / "gpu" / "last.pt", "cpu")
    assert not next(checkpoint.agent.parameters()).is_cuda


def test_rl_fine_tuning_runs_on_the_gpu(run_root):  # noqa: F811
    """PPO back-propagates in evaluation mode, which cuDNN refuses for RNNs left in it."""
    summary = train_rl.main(_argv(run_root, 64) + ["--device", "cuda"])
    assert summary.frames == 64
    assert load_checkpoint(run_root / "models" / "ft" / "last.pt", "cpu").agent.config

"""Validation of a training run: metrics on the validation demos, and success on fresh levels."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from babyai.agent.model import Agent
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.data.dataset import DemoDataset, batches
from babyai.data.vocab import PAD, Vocabulary
from babyai.agent.records import thought_agreement
from babyai.training.loss import imitation_loss
from babyai.training.window import run_window


@torch.no_grad()
def demo_metrics(agent: Agent, data: DemoDataset, *, batch_size: int, recurrence: int,
                 device: torch.device, batch_statistics: bool = False) -> dict[str, float]:
    """Action accuracy/NLL (thoughts generated, as at test time) and thought-token
    accuracy/NLL (teacher-forced next-token prediction) on demonstrations.

    `batch_statistics=True` normalizes with each step's own BatchNorm statistics (as in
    training) instead of the running ones, on a copy of the agent: the gap between the two
    shows how well the running statistics match what the network was trained with.
    """
    if batch_statistics:
        copied = copy.deepcopy(agent).eval()
        for module in copied.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train()
        return _demo_metrics(copied, data, batch_size, recurrence, device)
    was_training = agent.training
    agent.eval()
    try:
        return _demo_metrics(agent, data, batch_size, recurrence, device)
    finally:
        agent.train(was_training)


def _demo_metrics(agent: Agent, data: DemoDataset, batch_size: int, recurrence: int,
                  device: torch.device) -> dict[str, float]:
    amp = device.type == "cuda"
    totals = dict(steps=0, correct=0, action_nll=0.0, thought_nll=0.0, tokens=0,
                  token_correct=0)
    order = np.arange(len(data))
    for indices in batches(order, batch_size):
        batch = data.batch(indices)
        memory = agent.initial_memory(len(batch), device)
        missions = batch.mission_tensor(device)
        for window in batch.windows(recurrence, device):
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                output, memory = run_window(agent, window, missions, memory,
                                            teacher_forcing=False)
            parts = imitation_loss(output.action_logits, output.actions,
                                   output.thought_logits, output.thought_targets,
                                   denominator=1.0)
            totals["steps"] += parts.steps
            totals["correct"] += int(parts.action_correct)
            totals["action_nll"] += float(parts.action)
            totals["thought_nll"] += float(parts.thought)
            if output.thought_logits is not None:
                target = output.thought_targets[:, 1:]
                real = target != PAD
                predicted = output.thought_logits.argmax(dim=-1)
                totals["tokens"] += int(real.sum())
                totals["token_correct"] += int(((predicted == target) & real).sum())
    steps = max(totals["steps"], 1)
    metrics = {"val/action_acc": totals["correct"] / steps,
               "val/action_nll": totals["action_nll"] / steps}
    if agent.config.use_thoughts:
        metrics["val/thought_acc"] = totals["token_correct"] / max(totals["tokens"], 1)
        metrics["val/thought_nll"] = totals["thought_nll"] / steps
    return metrics


def success_metrics(agent: Agent, vocab: Vocabulary, env: str, seeds: Sequence[int], *,
                    argmax: bool, device: torch.device) -> dict[str, float]:
    """Success rate, mean reward and mean length on fresh levels (one episode per seed);
    for TC also the share of visited states where its thought equals the bot's thought."""
    use_thoughts = bool(agent.config.use_thoughts)
    records = run_episodes(agent, vocab, env, list(seeds),
                           RolloutOptions(argmax=argmax, bot_thoughts=use_thoughts),
                           device=device)
    metrics = {"val/success_rate": float(np.mean([r.success for r in records])),
               "val/mean_reward": float(np.mean([r.reward for r in records])),
               "val/mean_length": float(np.mean([r.length for r in records]))}
    if use_thoughts:
        metrics["val/thought_match"] = thought_agreement(records).value
    return metrics

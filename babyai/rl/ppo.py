"""Proximal policy optimisation for the recurrent two-level agent, in one readable module.

Why our own and not TorchRL's `GAE`/`ClipPPOLoss`: those expect a policy that maps one
TensorDict of observations to a distribution. Our agent is recurrent at two levels, reads
its thought as an input that was generated (not sampled with a log-probability), and must be
re-run over BPTT windows from stored memories; wrapping it would take more code than the
three functions below, which are each checked against a hand computation in the tests.

Shapes: experience is time-major, `[T, P]` for T steps of P environments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from babyai.agent.model import TextEncoding, eval_with_rnn_gradients


def compute_gae(rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor,
                discount: float, gae_lambda: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    Args:
        rewards, values, dones: [T, P]; `dones[t]` is 1 when the episode ended at step t
            (its next observation belongs to a new episode, so nothing is bootstrapped).
        last_value: [P] value of the observation after the last step.
    Returns:
        advantages [T, P] and returns (= advantages + values) [T, P].
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(steps)):
        keep = 1.0 - dones[t].to(rewards.dtype)
        delta = rewards[t] + discount * next_value * keep - values[t]
        next_advantage = delta + discount * gae_lambda * keep * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values


class LossParts(NamedTuple):
    """The PPO loss and its parts (each a mean over the given steps)."""

    loss: Tensor
    policy: Tensor
    value: Tensor
    entropy: Tensor
    clip_fraction: Tensor
    approx_kl: Tensor


@dataclass(frozen=True)
class LossCoefficients:
    clip_eps: float = 0.2
    value_loss_coef: float = 0.5
    entropy_coef: float = 0.01


def ppo_loss(logits: Tensor, actions: Tensor, old_log_probs: Tensor, advantages: Tensor,
             values: Tensor, old_values: Tensor, returns: Tensor,
             coefs: LossCoefficients) -> LossParts:
    """Clipped surrogate + clipped value loss − entropy bonus, averaged over the N steps given.

    policy = mean(−min(r·A, clip(r, 1−ε, 1+ε)·A)), r = exp(logπ(a) − logπ_old(a));
    value = mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)) (BabyAI's form);
    loss = policy + value_loss_coef·value − entropy_coef·entropy.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1).mean()
    new_log_probs = log_probs.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    ratio = torch.exp(new_log_probs - old_log_probs)
    clipped_ratio = ratio.clamp(1.0 - coefs.clip_eps, 1.0 + coefs.clip_eps)
    policy = -torch.min(ratio * advantages, clipped_ratio * advantages).mean()
    clipped_values = old_values + (values - old_values).clamp(-coefs.clip_eps, coefs.clip_eps)
    value = torch.max((values - returns) ** 2, (clipped_values - returns) ** 2).mean()
    loss = policy + coefs.value_loss_coef * value - coefs.entropy_coef * entropy
    with torch.no_grad():
        clip_fraction = ((ratio - 1.0).abs() > coefs.clip_eps).float().mean()
        approx_kl = (old_log_probs - new_log_probs).mean()
    return LossParts(loss, policy, value, entropy, clip_fraction, approx_kl)


# --------------------------------------------------------------------------- the recurrent update

@dataclass(frozen=True)
class UpdateSettings:
    """How one collection is turned into gradient steps."""

    recurrence: int = 4
    """BPTT window in steps: memories are re-run from the recorded start of each window."""
    epochs: int = 4
    batch_size: int = 256
    """Frames per gradient step (a multiple of `recurrence`)."""
    max_grad_norm: float = 0.5
    thought_loss_coef: float = 0.0
    """> 0 adds the upper level's thought loss on the bot's thoughts for visited states."""
    coefs: LossCoefficients = LossCoefficients()


class WindowOutputs(NamedTuple):
    """Re-run outputs for B windows of R steps, flattened step-major to [R*B, ...]."""

    logits: Tensor
    values: Tensor
    upper_h: Tensor | None
    upper_c: Tensor | None
    missions: TextEncoding | None = None
    """Every step's encoded mission, for a thought decoder that reads it."""


def window_outputs(agent: Any, exp: Any, starts: Tensor, procs: Tensor, recurrence: int,
                   device: Any = "cpu") -> WindowOutputs:
    """Run the agent over windows [starts[b], starts[b] + R) of environment procs[b].

    Each window starts from the memory recorded at its first step; inside it the memory is
    carried with gradients and reset where an episode starts, and the lower level reads the
    thought recorded at collection (teacher-forced), exactly as collection computed it.
    """
    device = torch.device(device)
    steps = torch.stack([starts + offset for offset in range(recurrence)])  # [R, B]
    index = (steps.reshape(-1), procs.repeat(recurrence))
    missions = exp.missions[index].to(device)
    width = max(1, int((missions != 0).sum(dim=1).max()))
    encoded = agent.encode_missions(missions[:, :width])
    batch = starts.shape[0]
    memory = type(exp.memories)(*(m[starts, procs].to(device) for m in exp.memories))
    logits, values, upper_h, upper_c = [], [], [], []
    for offset in range(recurrence):
        rows = slice(offset * batch, (offset + 1) * batch)
        t = steps[offset]
        memory = memory.mask(exp.keep[t, procs].to(device))
        thought = exp.thoughts[t, procs].to(device) if exp.thoughts is not None else None
        out = agent(exp.images[t, procs].to(device, torch.long), encoded.index(rows), memory,
                    thought_target=thought, teacher_forcing=True, with_thought_logits=False)
        memory = out.memory
        logits.append(out.action_logits)
        values.append(out.value)
        if thought is not None:
            upper_h.append(out.memory.upper_h)
            upper_c.append(out.memory.upper_c)
    return WindowOutputs(torch.cat(logits), torch.cat(values),
                         torch.cat(upper_h) if upper_h else None,
                         torch.cat(upper_c) if upper_c else None,
                         encoded if agent.thought_decoder_reads_mission else None)


def thought_loss(agent: Any, upper_h: Tensor, upper_c: Tensor, targets: Tensor,
                 missions: TextEncoding | None = None) -> Tensor | None:
    """Mean over steps with a bot thought of the per-step mean token NLL (the imitation loss).
    `missions`: every step's encoded mission, for a thought decoder that reads it."""
    valid = targets[:, 0] != 0
    if not bool(valid.any()):
        return None
    targets = targets[valid]
    logits = agent.thought_logits(upper_h[valid], upper_c[valid], targets,
                                  missions.index(valid) if missions is not None else None)
    labels = targets[:, 1:]
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                          ignore_index=0, reduction="none").view_as(labels)
    tokens = (labels != 0).sum(dim=1).clamp(min=1)
    return (nll.sum(dim=1) / tokens).mean()


def ppo_update(agent: Any, optimizer: torch.optim.Optimizer, exp: Any, settings: UpdateSettings,
               generator: torch.Generator, device: Any = "cpu") -> dict[str, float]:
    """`settings.epochs` passes over the collection in shuffled minibatches of windows;
    returns the mean of each loss part over all gradient steps."""
    recurrence = settings.recurrence
    window_starts = torch.arange(0, exp.steps, recurrence)
    all_starts = window_starts.repeat_interleave(exp.procs)
    all_procs = torch.arange(exp.procs).repeat(len(window_starts))
    per_batch = max(1, settings.batch_size // recurrence)
    sums: dict[str, float] = {}
    count = 0
    was_training = agent.training
    eval_with_rnn_gradients(agent)  # as at collection: BatchNorm running statistics, no dropout
    try:
        for _ in range(settings.epochs):
            order = torch.randperm(len(all_starts), generator=generator)
            for chunk in order.split(per_batch):
                starts, procs = all_starts[chunk], all_procs[chunk]
                out = window_outputs(agent, exp, starts, procs, recurrence, device)
                steps = torch.stack([starts + offset for offset in range(recurrence)]).reshape(-1)
                rows = (steps, procs.repeat(recurrence))
                parts = ppo_loss(out.logits, exp.actions[rows].to(device),
                                 exp.log_probs[rows].to(device), exp.advantages[rows].to(device),
                                 out.values.float(), exp.values[rows].to(device),
                                 exp.returns[rows].to(device), settings.coefs)
                loss = parts.loss
                logged = {"policy_loss": parts.policy, "value_loss": parts.value,
                          "entropy": parts.entropy, "clip_fraction": parts.clip_fraction,
                          "approx_kl": parts.approx_kl}
                if settings.thought_loss_coef > 0 and exp.bot_thoughts is not None \
                        and out.upper_h is not None:
                    extra = thought_loss(agent, out.upper_h, out.upper_c,
                                         exp.bot_thoughts[rows].to(device), out.missions)
                    if extra is not None:
                        loss = loss + settings.thought_loss_coef * extra
                        logged["thought_nll"] = extra
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite PPO loss ({float(loss)})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(agent.parameters(), settings.max_grad_norm)
                optimizer.step()
                logged["loss"] = loss
                logged["grad_norm"] = grad_norm
                for key, value in logged.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                count += 1
    finally:
        agent.train(was_training)
    return {key: value / count for key, value in sums.items()}

"""The imitation loss of Thought Cloning, as named parts.

Per step: action NLL −log π(a*), action entropy H(π), and the thought NLL of the step's
target thought: by default the SUM of its token NLLs (its words and the end token), as the
original implementation computes it; `reduction="mean"` averages over the tokens instead,
which weakens the thought term by the mean thought length (about 7x on MiniBossLevel) at
the same `sg_coef`. Each part is averaged over the valid steps;
total = action − entropy_coef·entropy + sg_coef·thought. A step whose action is NO_ACTION
(a thoughts-only demo) adds nothing to the action and entropy sums; it still counts in the
average, so such steps scale the action term down rather than up-weighting the others.

The average divides by `denominator` when given (default: the number of valid steps). The
trainer passes the number of valid steps of the whole batch (over all windows and ranks), so
the gradients accumulated window by window equal the gradient of the batch mean.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from babyai.data.dataset import NO_ACTION
from babyai.data.vocab import PAD


class LossParts(NamedTuple):
    """Named parts of the loss (scalars); `steps` is the number of valid steps counted."""

    total: torch.Tensor
    action: torch.Tensor
    thought: torch.Tensor
    entropy: torch.Tensor
    action_correct: torch.Tensor
    """number of valid steps whose most likely action is the demonstrated one (no grad)"""
    steps: int


def imitation_loss(action_logits: torch.Tensor, actions: torch.Tensor,
                   thought_logits: torch.Tensor | None = None,
                   thought_targets: torch.Tensor | None = None,
                   valid: torch.Tensor | None = None, *,
                   entropy_coef: float = 0.01, sg_coef: float = 1.0,
                   denominator: float | None = None,
                   thought_reduction: str = "sum") -> LossParts:
    """Loss of N steps.

    Args:
        action_logits: [N, A].
        actions: [N] demonstrated actions.
        thought_logits: [N, Lt-1, V] predictions of `thought_targets[:, 1:]`, or None (BC).
        thought_targets: [N, Lt] `<s> words </s>` PAD-padded.
        valid: [N] bool; invalid steps contribute nothing (default: all valid).
        entropy_coef, sg_coef: weights of the entropy bonus and of the thought loss.
        thought_reduction: "sum" (the original's) or "mean" over a thought's tokens.
        denominator: divide the sums by this instead of the number of valid steps.
    """
    action_logits = action_logits.float()
    if valid is None:
        valid = torch.ones_like(actions, dtype=torch.bool)
    steps = int(valid.sum())
    denom = float(denominator) if denominator is not None else max(steps, 1)
    labelled = valid & (actions != NO_ACTION)
    weight = labelled.float()
    actions = torch.where(labelled, actions, torch.zeros_like(actions))

    log_probs = F.log_softmax(action_logits, dim=-1)
    action_nll = -log_probs.gather(1, actions.long()[:, None]).squeeze(1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    action = (action_nll * weight).sum() / denom
    entropy_mean = (entropy * weight).sum() / denom

    if thought_logits is not None and thought_targets is not None:
        thought = thought_nll(thought_logits, thought_targets, valid, denominator=denom,
                              reduction=thought_reduction)
    else:
        thought = action.new_zeros(())

    total = action - entropy_coef * entropy_mean + sg_coef * thought
    with torch.no_grad():
        correct = ((action_logits.argmax(dim=-1) == actions) & labelled).sum()
    return LossParts(total, action, thought, entropy_mean, correct, steps)


THOUGHT_REDUCTIONS = ("sum", "mean")


def thought_nll(thought_logits: torch.Tensor, thought_targets: torch.Tensor,
                valid: torch.Tensor | None = None, *, denominator: float | None = None,
                reduction: str = "sum", weights: torch.Tensor | None = None) -> torch.Tensor:
    """The thought part alone: per step, the sum (or, with `reduction="mean"`, the mean) of
    the NLLs of its non-padding target tokens, times the step's weight (`weights`, [N];
    default 1: see babyai.training.thought_weights); summed over valid steps and divided by
    `denominator` (default: the valid steps).

    Separate so a trainer can back-propagate it in chunks of steps (see babyai.training.step).
    """
    if reduction not in THOUGHT_REDUCTIONS:
        raise ValueError(f"reduction must be one of {THOUGHT_REDUCTIONS}, got {reduction!r}")
    target = thought_targets[:, 1:].long()
    token_nll = F.cross_entropy(thought_logits.float().reshape(-1, thought_logits.shape[-1]),
                                target.reshape(-1), ignore_index=PAD, reduction="none")
    token_nll = token_nll.view_as(target)
    tokens = (target != PAD).float()
    per_step = (token_nll * tokens).sum(dim=1)
    if reduction == "mean":
        per_step = per_step / tokens.sum(dim=1).clamp(min=1.0)
    if weights is not None:
        per_step = per_step * weights.float()
    if valid is not None:
        per_step = per_step * valid.float()
    if denominator is None:
        denominator = max(int(valid.sum()) if valid is not None else len(per_step), 1)
    return per_step.sum() / denominator

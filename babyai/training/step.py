"""One optimizer step on one batch: the heart of imitation training.

The batch's whole episodes are laid out time-major, longest first, and cut into windows of
`recurrence` steps (the last partial window is kept). Each step runs the agent ONCE, on the
rows still active (:func:`~babyai.training.window.run_window`); the memory is carried,
detached, from one window to the next, so there is no extra no-grad pass. Each window's loss
sums are divided by the number of valid steps of the whole batch and back-propagated right
away (the graph of one window is all that is alive); one optimizer step follows the last
window, so the update is that of the batch mean, as in the original.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from babyai.agent.model import Agent, Memory
from babyai.common.errors import UserError
from babyai.data.batch import Batch
from babyai.training.config import TrainConfig
from babyai.training.binding import BindingTargets, binding_loss
from babyai.training.counterfactual import ThoughtSwap, unlikelihood
from babyai.training.distributed import DistContext, all_reduce_gradients, all_reduce_sum
from babyai.training.loss import imitation_loss, thought_nll
from babyai.training.window import WindowOutput, run_window

THOUGHT_CHUNK = 256
"""Steps whose teacher-forced thought decoding is back-propagated together (memory bound)."""


class NonFiniteLoss(UserError):
    """The loss became NaN/inf; the run stops and its last checkpoint is left intact."""


@dataclass
class BatchStep:
    """Forward, backward and optimizer step of one batch (`step(batch, ...)` -> metrics)."""

    config: TrainConfig
    agent: Agent
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    dist: DistContext
    swap: ThoughtSwap | None = None
    """The counterfactual thoughts of `--counterfactual-coef` and `--binding-coef` (None:
    both off)."""
    binding: BindingTargets | None = None
    """The binding targets of `--binding-coef` (None: off)."""

    @property
    def amp(self) -> bool:
        """float16 mixed precision with a loss scaler: on CUDA only."""
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision of the agent's training forward passes: float16 autocast on CUDA,
        bfloat16 autocast on a CPU with `--cpu-precision bf16` (bfloat16 has float32's
        range, so no loss scaling), else float32."""
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        if self.device.type == "cpu" and self.config.cpu_precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, batch: Batch, teacher_forcing: bool, total_steps: int) -> dict[str, float]:
        """Forward/backward over the windows of `batch`, then one optimizer step.

        `total_steps` is the number of valid steps of the global batch (all ranks).
        Returns the batch's metrics (global means when distributed).
        """
        return self.run(batch, teacher_forcing, total_steps)[0]

    def run(self, batch: Batch, teacher_forcing: bool, total_steps: int,
            memory: Memory | None = None) -> tuple[dict[str, float], Memory | None]:
        """As `__call__`, starting from `memory` (lanes carry it from batch to batch; default
        zeros); also returns the detached memory after the batch's last step."""
        config = self.config
        # loss, action, thought, entropy, correct, steps, binding BCE, binding correct, rows
        sums = torch.zeros(9, dtype=torch.float64)
        self.optimizer.zero_grad(set_to_none=True)
        if len(batch):
            if memory is None:
                memory = self.agent.initial_memory(len(batch), self.device)
            missions = batch.mission_tensor(self.device)
            for window in batch.windows(config.recurrence, self.device):
                with self.autocast():
                    output, memory = run_window(self.agent, window, missions, memory,
                                                teacher_forcing, with_thought_logits=False,
                                                history_thought=config.history_thoughts,
                                                swap=self.swap,
                                                pickup_term=config.counterfactual_coef > 0,
                                                binding=self.binding,
                                                binding_swap=config.binding_swap)
                parts = imitation_loss(output.action_logits, output.actions,
                                       entropy_coef=config.entropy_coef,
                                       denominator=total_steps)
                if output.counterfactual_logits is not None:
                    parts = parts._replace(total=parts.total + config.counterfactual_coef
                                           * unlikelihood(output.counterfactual_logits).sum()
                                           / total_steps)
                bound = torch.zeros(3, dtype=torch.float64)
                if output.binding_logits is not None and len(output.binding_logits):
                    bce = binding_loss(output.binding_logits, output.binding_labels).sum()
                    parts = parts._replace(total=parts.total
                                           + config.binding_coef * bce / total_steps)
                    right = ((output.binding_logits > 0).float() == output.binding_labels).sum()
                    bound = torch.tensor([bce.item(), right.item(), len(output.binding_logits)],
                                         dtype=torch.float64)
                roots, grads = [self.scaler.scale(parts.total)], [None]
                thought = 0.0
                if output.upper_h is not None:
                    thought, cut = self._thought_backward(output, total_steps)
                    for tensor, grad in cut:
                        roots.append(tensor)
                        grads.append(grad)
                torch.autograd.backward(roots, grads)
                memory = memory.detach()
                total = parts.total.item() + config.sg_coef * thought
                sums += torch.cat([torch.tensor(
                    [total, parts.action.item(), thought, parts.entropy.item(),
                     float(parts.action_correct), float(parts.steps)], dtype=torch.float64), bound])
        params = [p for p in self.agent.parameters() if p.requires_grad]
        if self.dist.enabled:
            all_reduce_gradients(params)
            sums = all_reduce_sum(sums, self.device)
        loss = float(sums[0])
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the loss became {loss}")
        self.scaler.unscale_(self.optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
        if not math.isfinite(grad_norm) and not self.amp:
            raise NonFiniteLoss(f"the gradient norm became {grad_norm}")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        steps = max(float(sums[5]), 1.0)
        metrics = {"loss": loss, "action_nll": float(sums[1]), "thought_nll": float(sums[2]),
                   "entropy": float(sums[3]), "action_acc": float(sums[4]) / steps,
                   "grad_norm": grad_norm, "steps": float(sums[5])}
        if self.binding is not None:  # per binding reading, not per step
            rows = max(float(sums[8]), 1.0)
            metrics.update(binding_bce=float(sums[6]) / rows, binding_acc=float(sums[7]) / rows,
                           binding_rows=float(sums[8]))
        return metrics, memory

    def _thought_backward(self, output: WindowOutput, total_steps: int
                          ) -> tuple[float, list[tuple[torch.Tensor, torch.Tensor]]]:
        """The thought loss of a window, back-propagated in chunks of steps.

        The teacher-forced decoder (an LSTM of memory_dim over every token of every step's
        thought) holds most of a window's activations. Its inputs, the upper memories (and
        the encoded missions, for a decoder that reads them), are cut from the graph; each
        chunk's loss is back-propagated at once (freeing that chunk's decoder graph) and the
        gradients reaching the cut inputs are handed back to the caller, who
        back-propagates them through the rest of the window together with the action loss.
        The gradients are exactly those of one backward over the whole window; peak memory
        holds one chunk of decoder activations instead of the window's.
        Returns the window's thought NLL (summed / total_steps) and (input, gradient) pairs
        of the cut inputs (none when the thought loss is off).
        """
        config = self.config
        learn = config.sg_coef > 0
        upper_h = output.upper_h.detach().requires_grad_(learn)
        upper_c = output.upper_c.detach().requires_grad_(learn)
        cut = [(output.upper_h, upper_h), (output.upper_c, upper_c)]
        missions = output.missions
        if missions is not None:
            features = missions.features.detach().requires_grad_(learn)
            cut.append((missions.features, features))
            missions = missions._replace(features=features)
        value = 0.0
        with torch.set_grad_enabled(learn):
            for start in range(0, len(upper_h), THOUGHT_CHUNK):
                rows = slice(start, start + THOUGHT_CHUNK)
                step_missions = (missions.index(output.mission_rows[rows])
                                 if missions is not None else None)
                with self.autocast():
                    logits = self.agent.thought_logits(upper_h[rows], upper_c[rows],
                                                       output.thought_targets[rows],
                                                       step_missions)
                weights = (output.thought_weights[rows]
                           if output.thought_weights is not None else None)
                nll = thought_nll(logits, output.thought_targets[rows], denominator=total_steps,
                                  reduction=config.thought_loss_reduction, weights=weights)
                if learn:
                    self.scaler.scale(config.sg_coef * nll).backward()
                value += nll.item()
        if not learn:
            return value, []
        return value, [(original, detached.grad) for original, detached in cut]

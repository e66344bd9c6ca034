"""Imitation training of Thought Cloning (and the behavioural-cloning baseline).

How a batch is trained (DESIGN.md §6): the batch's whole episodes are laid out time-major,
longest first, and cut into windows of `recurrence` steps (the last partial window is
kept). Each step runs the agent ONCE, on the rows still active; the memory is carried, detached,
from one window to the next, so there is no extra no-grad pass. Each window's loss sums are
divided by the number of valid steps of the whole batch and back-propagated right away (the
graph of one window is all that is alive); one optimizer step follows the last window, so the
update is that of the batch mean, as in the original.

Reproducibility and resume: all randomness of an epoch is re-derived from (seed, epoch, rank) at
the start of the epoch — torch's RNG (dropout), the teacher-forcing draws and the sampler,
which is a pure function of its position. A checkpoint therefore needs only weights,
optimizer, grad-scaler and sampler state plus counters, and a run killed and restarted with the
same command ends with the same weights as an uninterrupted one (on the same device).

Scale-out: under `torchrun --nproc_per_node N`, every batch of `batch_size` episodes is
split among the ranks (rank r takes rows r, r+N, ... of the batch sorted by length, which
balances the work), so `--batch-size` stays the global batch and each rank sees a disjoint
part of each epoch. We do not wrap the model in DistributedDataParallel: the recurrent agent
calls forward many times per backward, so instead parameters and buffers are broadcast from rank
0 at start and gradients are summed with one all_reduce after the last window (every rank
divides by the global number of valid steps, so the sum is the global mean). Rank 0
validates, logs and saves. BatchNorm running statistics are rank 0's.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from babyai.common import storage
from babyai.agent.checkpoint import check_compatible, read_checkpoint, save_checkpoint
from babyai.data.dataset import Batch, DemoDataset, EpochSampler, Window, batches, load_dataset
from babyai.common.errors import UserError
from babyai.training.loss import imitation_loss, thought_nll
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.agent.model import Agent, Memory, build_agent
from babyai.training.config import TrainConfig
from babyai.common.runtime import pick_device, seed_everything
from babyai.training.schedules import learning_rate, teacher_forcing_draws, teacher_forcing_prob
from babyai.data.vocab import PAD, Vocabulary

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LOG_FILE = "log.csv"
# Fields that may change between a run and its resumption without changing its result.
RESUMABLE_CHANGES = ("device", "tb", "log_interval", "save_interval", "storage", "threads")
THOUGHT_CHUNK = 256
"""Steps whose teacher-forced thought decoding is back-propagated together (memory bound)."""


@dataclass
class TrainSummary:
    """What a finished (or resumed-and-finished) run reports."""

    run_dir: Path
    epochs_done: int
    frames: int
    best_success: float | None
    best_epoch: int | None
    last_metrics: dict = field(default_factory=dict)
    stopped_early: bool = False


class NonFiniteLoss(UserError):
    """The loss became NaN/inf; the run stops and its last checkpoint is left intact."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run (world_size 1 = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_context_from_env() -> DistContext:
    """Rank and world size as set by `torchrun` (a single process otherwise)."""
    return DistContext(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))


def _derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


class WindowOutput(NamedTuple):
    """The valid steps of one window, flattened time-major (step t's active rows, then t+1's)."""

    action_logits: torch.Tensor  # [N, A]
    actions: torch.Tensor  # [N]
    thought_logits: torch.Tensor | None  # [N, Lt-1, V] (None unless asked for)
    thought_targets: torch.Tensor | None  # [N, Lt]
    upper_h: torch.Tensor | None  # [N, memory_dim] new upper memories (TC only)
    upper_c: torch.Tensor | None


def run_window(agent: Agent, window: Window, missions: torch.Tensor, memory: Memory,
               teacher_forcing: bool, want_thought_logits: bool = True) -> tuple[WindowOutput, Memory]:
    """Run the agent once per step over one window, on the active rows only.

    Args:
        missions: [B, L] mission tokens of the batch (encoded here, inside the window's graph).
        memory: the memory carried in, one row per row active at the window's first step.
    Returns the window's outputs and the memory after its last step (rows still active).
    """
    rows = window.active[0]
    mission = agent.encode_missions(missions[:rows])
    memory = memory.index(slice(0, rows))
    logits, actions, targets, upper_h, upper_c = [], [], [], [], []
    use_thoughts = agent.config.use_thoughts
    for t, active in enumerate(window.active):
        if active == 0:
            break
        if active < rows:
            memory = memory.index(slice(0, active))
            mission = mission.index(slice(0, active))
            rows = active
        if window.has_start[t]:
            memory = memory.mask(~window.starts[t, :active])
        target = window.thoughts[t, :active] if use_thoughts else None
        out = agent(window.images[t, :active], mission, memory, thought_target=target,
                    teacher_forcing=teacher_forcing, thought_logits=False)
        memory = out.memory
        logits.append(out.action_logits)
        actions.append(window.actions[t, :active])
        if use_thoughts:
            targets.append(target)
            upper_h.append(memory.upper_h)
            upper_c.append(memory.upper_c)
    thought_logits = thought_targets = all_h = all_c = None
    if use_thoughts:
        thought_targets = torch.cat(targets)
        all_h, all_c = torch.cat(upper_h), torch.cat(upper_c)
        if want_thought_logits:
            thought_logits = agent.thought_logits(all_h, all_c, thought_targets)
    return WindowOutput(torch.cat(logits), torch.cat(actions), thought_logits,
                        thought_targets, all_h, all_c), memory


def _metric_row_fields() -> list[str]:
    return ["epoch", "update", "frames", "episodes", "seconds", "lr", "tf_prob", "tf_share",
            "train/loss", "train/action_nll", "train/thought_nll", "train/entropy",
            "train/action_acc", "train/grad_norm", "train/fps",
            "val/success_rate", "val/mean_reward", "val/mean_length", "val/action_acc",
            "val/thought_acc", "val/action_nll", "val/thought_nll"]


class Trainer:
    """One training run: data, agent, optimizer, schedules, validation, logs and checkpoints."""

    def __init__(self, config: TrainConfig, dist_context: DistContext | None = None) -> None:
        config.check()
        self.config = config
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.dist = dist_context or DistContext()
        self.device = pick_device(config.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        root = storage.storage_root(config.storage)
        self.run_dir = storage.model_dir(config.run_name(), root)
        self.demos_path = storage.demos_path(config.demos, root)
        self.valid_path = storage.demos_path(config.demos, root, valid=True)
        if self.dist.is_main:
            storage.ensure_writable_dir(self.run_dir)
        self.last_path = self.run_dir / "last.pt"
        self.best_path = self.run_dir / "best.pt"

        seed_everything(config.seed)
        resume = read_checkpoint(self.last_path) if self.last_path.is_file() else None
        saved_vocab = Vocabulary.from_list(resume["vocab"]) if resume else None
        if resume is not None:
            self._check_same_run(resume)
        if not self.demos_path.exists() and not any(c in str(self.demos_path) for c in "*?["):
            raise UserError(f"demonstrations not found: {self.demos_path} "
                            "(generate them first, or check --demos and --storage)")
        if not self.valid_path.exists():
            raise UserError(f"validation demonstrations not found: {self.valid_path} "
                            "(training needs a `_valid` file next to the training demos)")
        self.train_data = load_dataset(self.demos_path, env=config.env, vocab=saved_vocab,
                                       limit=config.episodes)
        self.vocab = self.train_data.vocab
        self.valid_data = load_dataset(self.valid_path, env=config.env, vocab=self.vocab)
        self._check_validation_seeds()

        self.agent = build_agent(config.model_config(len(self.vocab))).to(self.device)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.lr,
                                          eps=config.optim_eps)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.sampler = EpochSampler(len(self.train_data), config.epoch_length, config.seed)
        self.start_epoch = 0
        self.state: dict[str, Any] = {"updates": 0, "frames": 0, "episodes": 0, "seconds": 0.0,
                                      "best_success": None, "best_score": None,
                                      "best_epoch": None, "bad_validations": 0,
                                      "finished": False, "stopped_early": False}
        if resume is not None:
            self._restore(resume)
        elif self.dist.is_main:
            storage.atomic_write_text(self.run_dir / CONFIG_FILE,
                                      json.dumps(dataclasses.asdict(config), indent=2) + "\n")
        if self.dist.enabled:
            self._broadcast_model()
        self.writer = None
        if config.tb and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(self.run_dir))

    # ------------------------------------------------------------------ setup helpers

    def _check_same_run(self, resume: dict) -> None:
        saved = resume.get("extra", {}).get("train_config")
        if saved is None:
            raise UserError(f"{self.last_path} was not written by this trainer; "
                            "choose another --model name")
        current = dataclasses.asdict(self.config)
        different = {k: (saved.get(k), v) for k, v in current.items()
                     if k not in RESUMABLE_CHANGES and saved.get(k) != v}
        if different:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in different.items())
            raise UserError(f"{self.run_dir} holds a run with other settings ({details}); "
                            "rerun with the same flags to resume, or choose another --model")
        check_compatible(resume, self.config.model_config(len(resume["vocab"])), self.last_path)

    def _check_validation_seeds(self) -> None:
        if self.config.val_episodes == 0:
            return
        val = set(range(self.config.val_seed, self.config.val_seed + self.config.val_episodes))
        overlap = val.intersection(self.train_data.seeds.tolist())
        if overlap:
            raise UserError(f"--val-seed {self.config.val_seed} would replay {len(overlap)} "
                            f"training levels (e.g. seed {min(overlap)}); use --val-seed "
                            f"{int(self.train_data.seeds.max()) + 1} or higher")

    def _restore(self, resume: dict) -> None:
        extra = resume["extra"]
        self.agent.load_state_dict(resume["state_dict"], strict=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        if extra.get("scaler") and self.amp:
            self.scaler.load_state_dict(extra["scaler"])
        self.sampler.load_state_dict(extra["sampler"])
        self.start_epoch = int(extra["epoch"])
        self.state.update(extra["state"])
        if self.dist.is_main:
            log.info("resuming %s after epoch %d", self.run_dir, self.start_epoch)
            self._truncate_log(self.start_epoch)

    def _broadcast_model(self) -> None:
        for tensor in list(self.agent.parameters()) + list(self.agent.buffers()):
            dist.broadcast(tensor.data, src=0)

    # ------------------------------------------------------------------ one batch

    def _share(self, indices: np.ndarray) -> tuple[np.ndarray, int]:
        """This rank's episodes of a global batch, and the batch's total number of steps."""
        lengths = self.train_data.lengths[indices]
        ordered = indices[np.argsort(-lengths, kind="stable")]
        return ordered[self.dist.rank::self.dist.world_size], int(lengths.sum())

    def train_batch(self, batch: Batch, teacher_forcing: bool, total_steps: int) -> dict[str, float]:
        """Forward/backward over the windows of `batch`, then one optimizer step.

        `total_steps` is the number of valid steps of the global batch (all ranks).
        Returns the batch's metrics (global means when distributed).
        """
        config = self.config
        sums = torch.zeros(6, dtype=torch.float64)  # loss, action, thought, entropy, correct, steps
        self.optimizer.zero_grad(set_to_none=True)
        if len(batch):
            memory = self.agent.initial_memory(len(batch), self.device)
            missions = batch.mission_tensor(self.device)
            for window in batch.windows(config.recurrence, self.device):
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    output, memory = run_window(self.agent, window, missions, memory,
                                                teacher_forcing, want_thought_logits=False)
                parts = imitation_loss(output.action_logits, output.actions,
                                       entropy_coef=config.entropy_coef,
                                       denominator=total_steps)
                roots, grads = [self.scaler.scale(parts.total)], [None]
                thought = 0.0
                if output.upper_h is not None:
                    thought, upper_grads = self._thought_backward(output, total_steps)
                    if upper_grads is not None:
                        roots += [output.upper_h, output.upper_c]
                        grads += list(upper_grads)
                torch.autograd.backward(roots, grads)
                memory = memory.detach()
                total = parts.total.item() + config.sg_coef * thought
                sums += torch.tensor([total, parts.action.item(), thought, parts.entropy.item(),
                                      float(parts.action_correct), float(parts.steps)],
                                     dtype=torch.float64)
        params = [p for p in self.agent.parameters() if p.requires_grad]
        if self.dist.enabled:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
            sums_device = sums.to(self.device)
            dist.all_reduce(sums_device)
            sums = sums_device.cpu()
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
        return {"loss": loss, "action_nll": float(sums[1]), "thought_nll": float(sums[2]),
                "entropy": float(sums[3]), "action_acc": float(sums[4]) / steps,
                "grad_norm": grad_norm, "steps": float(sums[5])}

    def _thought_backward(self, output: WindowOutput, total_steps: int
                          ) -> tuple[float, tuple[torch.Tensor, torch.Tensor] | None]:
        """The thought loss of a window, back-propagated in chunks of steps.

        The teacher-forced decoder (an LSTM of memory_dim over every token of every step's
        thought) holds most of a window's activations. Its input, the upper memories, is cut
        from the graph; each chunk's loss is back-propagated at once (freeing that chunk's
        decoder graph) and the gradient reaching the upper memories is handed back to the
        caller, who back-propagates it through the rest of the window together with the
        action loss. The gradients are exactly those of one backward over the whole window;
        peak memory holds one chunk of decoder activations instead of the window's.
        Returns the window's thought NLL (summed / total_steps) and the upper-memory grads.
        """
        config = self.config
        upper_h = output.upper_h.detach().requires_grad_(config.sg_coef > 0)
        upper_c = output.upper_c.detach().requires_grad_(config.sg_coef > 0)
        value = 0.0
        with torch.set_grad_enabled(config.sg_coef > 0):
            for start in range(0, len(upper_h), THOUGHT_CHUNK):
                rows = slice(start, start + THOUGHT_CHUNK)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    logits = self.agent.thought_logits(upper_h[rows], upper_c[rows],
                                                       output.thought_targets[rows])
                nll = thought_nll(logits, output.thought_targets[rows], denominator=total_steps)
                if config.sg_coef > 0:
                    self.scaler.scale(config.sg_coef * nll).backward()
                value += nll.item()
        if config.sg_coef > 0:
            return value, (upper_h.grad, upper_c.grad)
        return value, None

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def demo_metrics(self, data: DemoDataset, batch_size: int | None = None) -> dict[str, float]:
        """Action accuracy/NLL (thoughts generated, as at test time) and thought-token
        accuracy/NLL (teacher-forced next-token prediction) on demonstrations."""
        agent = self.agent
        was_training = agent.training
        agent.eval()
        totals = dict(steps=0, correct=0, action_nll=0.0, thought_nll=0.0, tokens=0,
                      token_correct=0)
        try:
            order = np.arange(len(data))
            for indices in batches(order, batch_size or self.config.batch_size):
                batch = data.batch(indices)
                memory = agent.initial_memory(len(batch), self.device)
                missions = batch.mission_tensor(self.device)
                for window in batch.windows(self.config.recurrence, self.device):
                    with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
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
        finally:
            agent.train(was_training)
        steps = max(totals["steps"], 1)
        metrics = {"val/action_acc": totals["correct"] / steps,
                   "val/action_nll": totals["action_nll"] / steps}
        if agent.config.use_thoughts:
            metrics["val/thought_acc"] = totals["token_correct"] / max(totals["tokens"], 1)
            metrics["val/thought_nll"] = totals["thought_nll"] / steps
        return metrics

    def validate(self) -> dict[str, float]:
        config = self.config
        metrics = self.demo_metrics(self.valid_data)
        if config.val_episodes > 0:
            seeds = range(config.val_seed, config.val_seed + config.val_episodes)
            records = run_episodes(self.agent, self.vocab, config.env, list(seeds),
                                   RolloutOptions(argmax=config.val_argmax), device=self.device)
            metrics["val/success_rate"] = float(np.mean([r.success for r in records]))
            metrics["val/mean_reward"] = float(np.mean([r.reward for r in records]))
            metrics["val/mean_length"] = float(np.mean([r.length for r in records]))
        return metrics

    # ------------------------------------------------------------------ checkpoints and logs

    def _extra(self, epoch: int) -> dict:
        return {"train_config": dataclasses.asdict(self.config), "epoch": epoch,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.amp else None,
                "sampler": self.sampler.state_dict(), "state": dict(self.state)}

    def save(self, path: Path, epoch: int) -> None:
        save_checkpoint(path, self.agent, self.vocab, self._extra(epoch))

    def _log_path(self) -> Path:
        return self.run_dir / LOG_FILE

    def _truncate_log(self, epoch: int) -> None:
        """Drop log rows of epochs after the resume point (they will be redone)."""
        path = self._log_path()
        if not path.is_file():
            return
        with open(path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= epoch]
        fields = _metric_row_fields()

        def write(handle: Any) -> None:
            writer = csv.DictWriter(handle, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)
        storage.atomic_write(path, write, mode="w")

    def _write_row(self, row: dict[str, Any]) -> None:
        path = self._log_path()
        new = not path.is_file()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_metric_row_fields(), restval="")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
        if self.writer is not None:
            for key, value in row.items():
                if "/" in key and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, global_step=int(row["frames"]))
            for key in ("lr", "tf_prob"):
                self.writer.add_scalar(f"train/{key}", row[key], global_step=int(row["frames"]))
            self.writer.flush()

    # ------------------------------------------------------------------ the run

    def _set_lr(self, epoch: int) -> float:
        config = self.config
        rate = learning_rate(epoch, config.lr, warm_start=config.warm_start, stop_tf=config.stop_tf)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def train_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        torch.manual_seed(_derived_seed(config.seed, epoch, self.dist.rank))
        indices = self.sampler.next_epoch()
        epoch_batches = batches(indices, config.batch_size)
        tf_prob = teacher_forcing_prob(epoch, config.epochs, config.stop_tf)
        draws = teacher_forcing_draws(config.seed, epoch, len(epoch_batches), tf_prob)
        lr = self._set_lr(epoch)
        self.agent.train()
        totals: dict[str, float] = {}
        started = time.perf_counter()
        bar = tqdm(epoch_batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   leave=False, disable=not self.dist.is_main)
        for number, global_indices in enumerate(bar):
            mine, total_steps = self._share(global_indices)
            teacher_forcing = bool(draws[number]) or not config.use_thoughts
            try:
                batch = self.train_data.batch(mine)
                metrics = self.train_batch(batch, teacher_forcing, total_steps)
            except Exception as error:
                seeds = self.train_data.seeds[global_indices].tolist()
                where = f"batch {number} of epoch {epoch + 1} (episode seeds {seeds})"
                if isinstance(error, NonFiniteLoss):
                    raise NonFiniteLoss(
                        f"{error} in {where}; stopping. The last good checkpoint is "
                        f"{self.last_path} (try a lower --lr)") from error
                if isinstance(error, UserError):
                    raise UserError(f"{error} in {where}") from error
                raise RuntimeError(f"training failed in {where}: "
                                   f"{type(error).__name__}: {error}") from error
            for key, value in metrics.items():
                weight = 1.0 if key == "steps" else metrics["steps"]
                totals[key] = totals.get(key, 0.0) + value * weight
            totals["tf"] = totals.get("tf", 0.0) + float(teacher_forcing)
            self.state["updates"] += 1
            if self.dist.is_main:
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['action_acc']:.2f}")
        bar.close()
        seconds = time.perf_counter() - started
        steps = max(totals.get("steps", 0.0), 1.0)
        self.state["frames"] += int(totals.get("steps", 0))
        self.state["episodes"] += len(indices)
        self.state["seconds"] += seconds
        return {"lr": lr, "tf_prob": tf_prob, "tf_share": totals.get("tf", 0.0) / max(len(epoch_batches), 1),
                **{f"train/{k}": totals.get(k, 0.0) / steps
                   for k in ("loss", "action_nll", "thought_nll", "entropy", "action_acc", "grad_norm")},
                "train/fps": totals.get("steps", 0.0) / max(seconds, 1e-9)}

    def _after_validation(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Track the best model; returns True when patience says stop."""
        score = metrics.get("val/success_rate", metrics.get("val/action_acc", 0.0))
        best = self.state["best_score"]
        if best is None or score > best:
            self.state.update(best_score=score, best_success=metrics.get("val/success_rate"),
                              best_epoch=epoch + 1, bad_validations=0)
            self.save(self.best_path, epoch + 1)
            return False
        self.state["bad_validations"] += 1
        return bool(self.config.patience) and self.state["bad_validations"] >= self.config.patience

    def run(self) -> TrainSummary:
        config = self.config
        if self.state["finished"]:
            log.info("%s has already finished (%d epochs); nothing to do", self.run_dir,
                     self.start_epoch)
            return self._summary({})
        if self.dist.is_main:
            log.info("training %s on %d episodes (%d steps) of %s; validation %d demos; "
                     "%d parameters; device %s%s", "TC" if config.use_thoughts else "BC",
                     len(self.train_data), self.train_data.num_steps, config.env,
                     len(self.valid_data), sum(p.numel() for p in self.agent.parameters()),
                     self.device, f" x{self.dist.world_size} ranks" if self.dist.enabled else "")
        row: dict[str, Any] = {}
        for epoch in range(self.start_epoch, config.epochs):
            train_metrics = self.train_epoch(epoch)
            last = epoch == config.epochs - 1
            val_due = (epoch + 1) % config.val_interval == 0 or last
            stop = False
            val_metrics: dict[str, float] = {}
            if self.dist.is_main:
                if val_due:
                    val_metrics = self.validate()
                    stop = self._after_validation(epoch, val_metrics)
            if self.dist.enabled:
                flag = torch.tensor([float(stop)], device=self.device)
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
            finished = last or stop
            self.state["finished"] = finished
            self.state["stopped_early"] = stop
            row = {"epoch": epoch + 1, "update": self.state["updates"],
                   "frames": self.state["frames"], "episodes": self.state["episodes"],
                   "seconds": round(self.state["seconds"], 2), **train_metrics, **val_metrics}
            if self.dist.is_main:
                # The row first: a kill before the save leaves a row that resume truncates.
                if (epoch + 1) % config.log_interval == 0 or val_metrics or finished:
                    self._write_row(row)
                    self._console(row)
                if (epoch + 1) % config.save_interval == 0 or finished:
                    self.save(self.last_path, epoch + 1)
            if stop:
                log.info("no better validation success for %d validations: stopping early",
                         config.patience)
                break
        if self.dist.enabled:
            self._check_in_sync()
        return self._summary(row)

    def _check_in_sync(self) -> None:
        """Ranks must end with identical weights; a silent divergence would be a bug."""
        total = torch.stack([p.detach().double().sum() for p in self.agent.parameters()]).sum()
        values = [torch.zeros_like(total) for _ in range(self.dist.world_size)]
        dist.all_gather(values, total)
        if any(not torch.equal(values[0], v) for v in values):
            raise RuntimeError(f"data-parallel ranks diverged: parameter sums {values}")

    def _console(self, row: dict[str, Any]) -> None:
        parts = [f"epoch {row['epoch']}/{self.config.epochs}", f"frames {row['frames']}",
                 f"fps {row['train/fps']:.0f}", f"loss {row['train/loss']:.3f}",
                 f"action {row['train/action_nll']:.3f} (acc {row['train/action_acc']:.3f})"]
        if self.config.use_thoughts:
            parts.append(f"thought {row['train/thought_nll']:.3f}")
        parts += [f"tf {row['tf_prob']:.2f}", f"lr {row['lr']:.2g}"]
        if "val/action_acc" in row:
            parts.append(f"val acc {row['val/action_acc']:.3f}")
        if "val/success_rate" in row:
            parts.append(f"val success {row['val/success_rate']:.3f}")
        log.info(" | ".join(parts))

    def _summary(self, row: dict[str, Any]) -> TrainSummary:
        summary = TrainSummary(self.run_dir, int(row.get("epoch", self.start_epoch)),
                               self.state["frames"], self.state["best_success"],
                               self.state["best_epoch"], row, self.state["stopped_early"])
        if self.dist.is_main:
            best = ("n/a" if summary.best_success is None
                    else f"{summary.best_success:.3f} (epoch {summary.best_epoch})")
            log.info("done: %d epochs, %d frames in %.0f s; best validation success %s; "
                     "checkpoints in %s", summary.epochs_done, summary.frames,
                     self.state["seconds"], best, self.run_dir)
        if self.writer is not None:
            self.writer.close()
        return summary


def train(config: TrainConfig, dist_context: DistContext | None = None) -> TrainSummary:
    """Train (or resume) one run; under torchrun, joins the process group first."""
    dist_context = dist_context or dist_context_from_env()
    created_group = False
    if dist_context.enabled and not dist.is_initialized():
        device = pick_device(config.device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=dist_context.rank, world_size=dist_context.world_size)
        created_group = True
    try:
        return Trainer(config, dist_context).run()
    finally:
        if created_group:
            dist.destroy_process_group()

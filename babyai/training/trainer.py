"""Imitation training of Thought Cloning (and the behavioural-cloning baseline): the loop.

`Trainer.run` is the whole algorithm at the level of epochs; the pieces live beside it:
one batch's forward/backward/optimizer step in :mod:`~babyai.training.step` (windows in
:mod:`~babyai.training.window`), the loss in :mod:`~babyai.training.loss`, the schedules in
:mod:`~babyai.training.schedules`, validation in :mod:`~babyai.training.validation`, the
counters and checkpoint payload in :mod:`~babyai.training.state`, best model and patience in
:mod:`~babyai.training.callbacks`, logs in :mod:`~babyai.training.logger` and data-parallel
helpers in :mod:`~babyai.training.distributed`.

Reproducibility and resume: all randomness of an epoch is re-derived from (seed, epoch,
rank) at its start, so a run killed and restarted with the same command ends with the same
weights as an uninterrupted one (see :mod:`~babyai.training.state`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from babyai.agent.checkpoint import check_compatible, read_checkpoint, save_checkpoint
from babyai.agent.layers import cpu_has_fast_bf16, use_bf16_convolutions
from babyai.agent.model import build_agent
from babyai.common import storage
from babyai.common.errors import UserError
from babyai.common.locks import writer_lock
from babyai.common.runtime import (default_threads, derived_seed, deterministic_kernels,
                                    pick_device, seed_everything)
from babyai.data.batch import Batch
from babyai.data.dataset import EpochSampler, batches, load_dataset
from babyai.data.lanes import LanePlan
from babyai.data.vocab import Vocabulary
from babyai.demos.files import check_pair
from babyai.training import distributed
from babyai.training.callbacks import EarlyStopping
from babyai.training.config import TrainConfig
from babyai.training.binding import BindingTargets
from babyai.training.counterfactual import ThoughtSwap
from babyai.training.distributed import DistContext, dist_context_from_env
from babyai.training.logger import MetricLogger
from babyai.training.schedules import learning_rate, teacher_forcing_draws, teacher_forcing_prob
from babyai.training.state import (TrainState, check_same_run, check_validation_seeds,
                                   checkpoint_extra, keep_saved_speed_settings, kept_extra)
from babyai.training.step import BatchStep, NonFiniteLoss
from babyai.training.thought_weights import thought_weight_table
from babyai.training.validation import demo_metrics, success_metrics

log = logging.getLogger(__name__)

__all__ = ["NonFiniteLoss", "TrainConfig", "TrainSummary", "Trainer", "train"]


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


class Trainer:
    """One training run: data, agent, optimizer, schedules, validation, logs and checkpoints."""

    def __init__(self, config: TrainConfig, dist_context: DistContext | None = None) -> None:
        config.check()
        self.config = config
        threads = default_threads(config.threads)
        if config.threads == 0 and threads < torch.get_num_threads():
            log.info("using %d torch thread(s): the load average leaves %d core(s) free "
                     "(--threads N to choose)", threads, threads)
        torch.set_num_threads(threads)
        self.dist = dist_context or DistContext()
        self.device = pick_device(config.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        root = storage.storage_root(config.storage)
        self.files = storage.run_files(storage.model_dir(config.run_name(), root))
        self.run_dir = self.files.dir
        if self.dist.is_main:
            storage.ensure_writable_dir(self.run_dir)

        seed_everything(config.seed)
        resume = read_checkpoint(self.files.last) if self.files.last.is_file() else None
        if resume is not None:
            keep_saved_speed_settings(resume, config)
            check_same_run(resume, config, self.run_dir, self.files.last)
        initial, initial_path = None, None
        if resume is None and config.init_from is not None:
            initial_path = storage.checkpoint_path(config.init_from, root)
            initial = read_checkpoint(initial_path)
        saved = resume or initial
        self._load_data(root, Vocabulary.from_list(saved["vocab"]) if saved else None)

        self.agent = build_agent(config.model_config(len(self.vocab))).to(self.device)
        if initial is not None:
            self._initialise(initial, initial_path)
        self.conv_bf16 = self.device.type == "cpu" and (
            config.conv_precision == "bf16"
            or (config.conv_precision == "auto" and cpu_has_fast_bf16()))
        use_bf16_convolutions(self.agent, self.conv_bf16)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.lr,
                                          eps=config.optim_eps)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        swap = (ThoughtSwap.from_vocab(self.vocab).to(self.device)
                if config.counterfactual_coef > 0 or config.binding_coef > 0 else None)
        binding = (BindingTargets.from_vocab(self.vocab).to(self.device)
                   if config.binding_coef > 0 else None)
        self.step = BatchStep(config, self.agent, self.optimizer, self.scaler, self.device,
                              self.dist, swap, binding)
        self.sampler = EpochSampler(len(self.train_data), config.epoch_length, config.seed)
        self.state = TrainState()
        self.early_stopping = EarlyStopping(config.patience)
        self.logger = MetricLogger(self.files.log, epochs=config.epochs,
                                   use_thoughts=config.use_thoughts,
                                   tensorboard_dir=self.run_dir if config.tb and self.dist.is_main
                                   else None)
        self.start_epoch = 0
        if resume is not None:
            self._restore(resume)
        elif self.dist.is_main:
            storage.atomic_write_text(self.files.config,
                                      json.dumps(dataclasses.asdict(config), indent=2) + "\n")
        if self.dist.enabled:
            distributed.broadcast_model(self.agent)

    def _load_data(self, root: Path, saved_vocab: Vocabulary | None) -> None:
        config = self.config
        demos, valid = storage.demos_path(config.demos, root), storage.demos_path(
            config.demos, root, valid=True)
        if not demos.exists() and not any(c in str(demos) for c in "*?["):
            raise UserError(f"demonstrations not found: {demos} "
                            "(generate them first, or check --demos and --storage)")
        if not valid.exists():
            raise UserError(f"validation demonstrations not found: {valid} "
                            "(training needs a `_valid` file next to the training demos)")
        check_pair(demos, valid, needs_thoughts=config.use_thoughts)
        source: list[Path] = [demos]
        thoughts_only: list[Path] = []
        if config.extra_demos is not None:
            if config.episodes is not None:
                raise UserError("--episodes limits --demos alone and cannot be combined with "
                                "--extra-demos; cut the demos file instead")
            extra = storage.demos_path(config.extra_demos, root)
            (thoughts_only if config.extra_demos_labels == "thoughts" else source).append(extra)
        self.train_data = load_dataset(source, env=config.env, vocab=saved_vocab,
                                       limit=config.episodes, thoughts_only=thoughts_only)
        if config.episodes is not None and len(self.train_data) < config.episodes:
            raise UserError(f"--episodes {config.episodes}: {demos} holds only "
                            f"{len(self.train_data)} episodes")
        self.family_weights: dict[str, float] = {}
        if config.thought_weights is not None:
            data = self.train_data
            data.thought_weights, self.family_weights = thought_weight_table(
                config.thought_weights, data.thought_texts, data.thought_ids)
        self.vocab = self.train_data.vocab
        self.valid_data = load_dataset(valid, env=config.env, vocab=self.vocab)
        check_validation_seeds(config, self.train_data.seeds.tolist())

    def _initialise(self, initial: dict, path: Path) -> None:
        """Take the weights of --init-from (its vocabulary is already the run's)."""
        check_compatible(initial, self.config.model_config(len(self.vocab)), path)
        self.agent.load_state_dict(initial["state_dict"], strict=True)
        log.info("initialised from %s", path)

    def _restore(self, resume: dict) -> None:
        extra = resume["extra"]
        self.agent.load_state_dict(resume["state_dict"], strict=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        if extra.get("scaler") and self.amp:
            self.scaler.load_state_dict(extra["scaler"])
        self.sampler.load_state_dict(extra["sampler"])
        self.start_epoch = int(extra["epoch"])
        self.state = TrainState(**extra["state"])
        if self.state.finished and self.start_epoch < self.config.epochs:
            self.state.finished = False  # extended: a larger --epochs (see check_same_run)
        if self.dist.is_main:
            log.info("resuming %s after epoch %d", self.run_dir, self.start_epoch)
            self.logger.truncate(self.start_epoch)

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainSummary:
        config, state = self.config, self.state
        if state.finished:
            log.info("%s has already finished (%d epochs); nothing to do", self.run_dir,
                     self.start_epoch)
            return self._summary({})
        self._announce()
        row: dict[str, Any] = {}
        for epoch in range(self.start_epoch, config.epochs):
            train_metrics = self.train_epoch(epoch)
            last = epoch == config.epochs - 1
            val_metrics: dict[str, float] = {}
            stop = False
            if self.dist.is_main and ((epoch + 1) % config.val_interval == 0 or last):
                val_metrics = self.validate()
                verdict = self.early_stopping.after_validation(state, val_metrics, epoch + 1)
                if verdict.improved:
                    self.save(self.files.best, epoch + 1)
                stop = verdict.stop
            if self.dist.enabled:
                stop = distributed.broadcast_flag(stop, self.device)
            state.finished, state.stopped_early = last or stop, stop
            row = {"epoch": epoch + 1, "update": state.updates, "frames": state.frames,
                   "episodes": state.episodes, "seconds": round(state.seconds, 2),
                   **train_metrics, **val_metrics}
            if self.dist.is_main:
                # The row first: a kill before the save leaves a row that resume truncates.
                if (epoch + 1) % config.log_interval == 0 or val_metrics or state.finished:
                    self.logger.record(row)
                # Kept weights before the resume point: a kill between the two retrains
                # the epoch and writes the same file again.
                if config.keep_interval and ((epoch + 1) % config.keep_interval == 0
                                             or state.finished):
                    self.keep(epoch + 1)
                if (epoch + 1) % config.save_interval == 0 or state.finished:
                    self.save(self.files.last, epoch + 1)
            if stop:
                log.info("no better validation success for %d validations: stopping early",
                         config.patience)
                break
        if self.dist.enabled:
            distributed.check_in_sync(self.agent, self.dist.world_size)
        return self._summary(row)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the epoch's episodes, one optimizer step per batch."""
        config = self.config
        torch.manual_seed(derived_seed(config.seed, epoch, self.dist.rank))
        indices = self.sampler.next_epoch()
        epoch_batches = batches(indices, config.batch_size)
        plan = None
        if config.layout == "lanes":
            plan = LanePlan.build(indices, self.train_data.lengths[indices], config.batch_size,
                                  len(epoch_batches), seed=derived_seed(config.seed, epoch))
        count = len(plan) if plan is not None else len(epoch_batches)
        tf_prob = (teacher_forcing_prob(epoch, config.epochs, config.stop_tf, config.tf_floor)
                   if config.teacher_forcing else 0.0)
        draws = teacher_forcing_draws(config.seed, epoch, len(epoch_batches), tf_prob)
        lr = learning_rate(epoch, config.lr, warm_start=config.warm_start, stop_tf=config.stop_tf)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.agent.train()
        totals: dict[str, float] = {}
        started = time.perf_counter()
        bar = tqdm(range(count), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   leave=False, disable=not self.dist.is_main)
        memory = None  # lanes: each lane's memory, carried from batch to batch
        for number in bar:
            teacher_forcing = bool(draws[number]) or not config.use_thoughts
            if plan is not None:
                batch = plan.batch(self.train_data, number,
                                   slice(self.dist.rank, None, self.dist.world_size))
                global_indices, total = batch.episodes, plan.batch_steps(number)
            else:
                global_indices = epoch_batches[number]
                lengths = self.train_data.lengths[global_indices]
                batch = self.train_data.batch(self.dist.share(global_indices, lengths))
                total = int(lengths.sum())
            try:
                metrics, memory = self.step.run(batch, teacher_forcing, total,
                                                memory if plan is not None else None)
            except Exception as error:
                raise self._batch_error(error, epoch, number, global_indices) from error
            for key, value in metrics.items():
                if key in ("steps", "binding_rows"):
                    weight = 1.0
                elif key.startswith("binding_"):  # a mean over the batch's binding readings
                    weight = metrics["binding_rows"]
                else:
                    weight = metrics["steps"]
                totals[key] = totals.get(key, 0.0) + value * weight
            totals["tf"] = totals.get("tf", 0.0) + float(teacher_forcing)
            self.state.updates += 1
            if self.dist.is_main:
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['action_acc']:.2f}")
        bar.close()
        seconds = time.perf_counter() - started
        steps = max(totals.get("steps", 0.0), 1.0)
        self.state.frames += int(totals.get("steps", 0))
        self.state.episodes += len(indices)
        self.state.seconds += seconds
        row = {"lr": lr, "tf_prob": tf_prob,
               "tf_share": totals.get("tf", 0.0) / max(count, 1),
               **{f"train/{k}": totals.get(k, 0.0) / steps for k in
                  ("loss", "action_nll", "thought_nll", "entropy", "action_acc", "grad_norm")},
               "train/fps": totals.get("steps", 0.0) / max(seconds, 1e-9)}
        if "binding_rows" in totals:
            readings = max(totals["binding_rows"], 1.0)
            row.update({f"train/{k}": totals[k] / readings for k in ("binding_bce", "binding_acc")})
        return row

    def train_batch(self, batch: Batch, teacher_forcing: bool, total_steps: int) -> dict[str, float]:
        """One optimizer step on `batch`; `total_steps` counts the global batch (all ranks)."""
        return self.step(batch, teacher_forcing, total_steps)

    def validate(self) -> dict[str, float]:
        config = self.config
        metrics = demo_metrics(self.agent, self.valid_data, batch_size=config.batch_size,
                               recurrence=config.recurrence, device=self.device)
        if config.val_episodes > 0:
            seeds = range(config.val_seed, config.val_seed + config.val_episodes)
            metrics.update(success_metrics(self.agent, self.vocab, config.env, seeds,
                                           argmax=config.val_argmax, device=self.device))
        return metrics

    def save(self, path: Path, epoch: int) -> None:
        scaler = self.scaler if self.amp else None
        save_checkpoint(path, self.agent, self.vocab, checkpoint_extra(
            self.config, epoch, self.optimizer, scaler, self.sampler, self.state))

    def keep(self, epoch: int) -> None:
        """The weights after `epoch`, without the optimizer state (a third of `last.pt`)."""
        self.files.epochs.mkdir(exist_ok=True)
        save_checkpoint(self.files.kept(epoch), self.agent, self.vocab,
                        kept_extra(self.config, epoch, self.state))

    # ------------------------------------------------------------------ messages

    def _batch_error(self, error: Exception, epoch: int, number: int,
                     global_indices: Any) -> Exception:
        """The error of a failing batch, naming its episode seeds (never swallowed)."""
        seeds = self.train_data.seeds[global_indices].tolist()
        where = f"batch {number} of epoch {epoch + 1} (episode seeds {seeds})"
        if isinstance(error, NonFiniteLoss):
            saved = (f"the last good checkpoint is {self.files.last}"
                     if self.files.last.is_file() else "no checkpoint was saved yet")
            return NonFiniteLoss(f"{error} in {where}; stopping: {saved} (try a lower --lr)")
        if isinstance(error, UserError):
            return UserError(f"{error} in {where}")
        return RuntimeError(f"training failed in {where}: {type(error).__name__}: {error}")

    def _announce(self) -> None:
        if self.dist.is_main:
            log.info("training %s on %d episodes (%d steps) of %s; validation %d demos; "
                     "%d parameters; device %s%s", "TC" if self.config.use_thoughts else "BC",
                     len(self.train_data), self.train_data.num_steps, self.config.env,
                     len(self.valid_data), sum(p.numel() for p in self.agent.parameters()),
                     self.device, f" x{self.dist.world_size} ranks" if self.dist.enabled else "")
            if self.family_weights:
                log.info("thought-loss weights (mean 1 over the training steps): %s",
                         ", ".join(f"{family} {weight:.2f}" for family, weight in
                                   sorted(self.family_weights.items(), key=lambda kv: -kv[1])))

    def _summary(self, row: dict[str, Any]) -> TrainSummary:
        state = self.state
        summary = TrainSummary(self.run_dir, int(row.get("epoch", self.start_epoch)),
                               state.frames, state.best_success, state.best_epoch, row,
                               state.stopped_early)
        if self.dist.is_main:
            best = ("n/a" if summary.best_success is None
                    else f"{summary.best_success:.3f} (epoch {summary.best_epoch})")
            log.info("done: %d epochs, %d frames in %.0f s; best validation success %s; "
                     "checkpoints in %s", summary.epochs_done, summary.frames,
                     state.seconds, best, self.run_dir)
        self.logger.close()
        return summary


def train(config: TrainConfig, dist_context: DistContext | None = None) -> TrainSummary:
    """Train (or resume) one run; under torchrun, joins the process group first."""
    dist_context = dist_context or dist_context_from_env()
    run_dir = storage.model_dir(config.run_name(), storage.storage_root(config.storage))
    lock = (writer_lock(run_dir, "run directory") if dist_context.is_main
            else contextlib.nullcontext())
    device = pick_device(config.device)
    with lock, deterministic_kernels(device), distributed.process_group(dist_context, device):
        return Trainer(config, dist_context).run()

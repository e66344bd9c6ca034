"""The fine-tuning loop: collect, update, log, evaluate on held-out seeds, checkpoint, resume.

A run lives in `<storage>/models/<rl-model>/` like an imitation run: `config.json`,
`log.csv` (one row per update), TensorBoard scalars (`--tb`), `best.pt` (best held-out
success; the starting agent counts, evaluated at frame 0) and `last.pt` (the resume point),
both in the imitation checkpoint format, so every evaluation command reads them. `last.pt`
also holds the optimizer, counters, random streams and the environments' episodes in
progress, so a killed run, rerun with the same command, ends exactly where an uninterrupted
one does (tested).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from babyai.agent.checkpoint import load_agent, read_checkpoint, save_checkpoint
from babyai.agent.model import Agent, ModelConfig, build_agent
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.common import storage
from babyai.common.errors import UserError
from babyai.common.locks import writer_lock
from babyai.common.runtime import derived_seed, deterministic_kernels, pick_device
from babyai.data.vocab import Vocabulary
from babyai.evaluation.levels import read_level_set
from babyai.rl.collect import Collector
from babyai.rl.config import RLConfig
from babyai.common.seeds import RL_EVAL_START
from babyai.rl.envs import make_episodes, make_vector_envs
from babyai.rl.ppo import LossCoefficients, UpdateSettings, ppo_update

log = logging.getLogger(__name__)

LOG_FIELDS = ["update", "frames", "episodes", "seconds", "fps", "success_rate", "mean_return",
              "mean_length", "loss", "policy_loss", "value_loss", "entropy", "thought_nll",
              "clip_fraction", "approx_kl", "grad_norm", "eval/success_rate", "eval/mean_return"]
"""Columns of log.csv. `success_rate`/`mean_return`: episodes that ended during the update's
collection; `eval/...`: the held-out seeds (greedy thoughts, sampled actions, as the paper)."""
MUTABLE = ("frames", "storage", "device", "threads", "tb", "workers")
"""Settings that may change when a run is resumed (the rest must match config.json)."""


@dataclass
class RLSummary:
    run_dir: Path
    updates: int
    frames: int
    best_success: float
    last_success: float | None


def bin_seeds(config: RLConfig, root: Path) -> tuple[list[int] | None, list[int]]:
    """(training seeds, held-out evaluation seeds): the bin split, or fresh seeds of the level."""
    if config.testing_levels_path is None:
        return None, [RL_EVAL_START + i for i in range(config.eval_episodes)]
    path = storage.levels_path(config.testing_levels_path, root)
    levels = read_level_set(path)
    bins = levels.get(config.diff_type, {})
    label: Any = int(config.diff) if str(config.diff).isdigit() else config.diff
    if label not in bins:
        raise UserError(f"{path} has no {config.diff_type} bin {config.diff!r}; it has "
                        f"{', '.join(map(str, bins)) or 'none'}")
    seeds = [int(seed) for seed in bins[label]]
    if len(seeds) <= config.eval_episodes:
        raise UserError(f"bin {config.diff_type} {config.diff} of {path} has {len(seeds)} seeds: "
                        f"too few to hold out --eval-episodes {config.eval_episodes} and train "
                        "on the rest")
    return seeds[: -config.eval_episodes], seeds[-config.eval_episodes:]


def _starting_agent(config: RLConfig, root: Path, device: torch.device) -> tuple[Agent, Vocabulary]:
    if config.model is not None:
        loaded = load_agent(config.model, root, device)
        return loaded.agent, loaded.vocab
    from babyai.data.dataset import load_dataset
    vocab = load_dataset(storage.demos_path(config.demos, root)).vocab
    model = ModelConfig(len(vocab), image_dim=config.image_dim, memory_dim=config.memory_dim,
                        instr_dim=config.instr_dim, use_thoughts=config.arch == "tc")
    return build_agent(model).to(device), vocab


class _Log:
    """log.csv (one row per update), optional TensorBoard, one console line per update."""

    def __init__(self, path: Path, tensorboard: bool) -> None:
        self.path = path
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(path.parent))

    def truncate(self, update: int) -> None:
        """Drop rows after `update` (a resumed run redoes them)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["update"]) <= update]
        storage.atomic_write(self.path, lambda h: self._write(h, rows, header=True), mode="w")

    @staticmethod
    def _write(handle: Any, rows: list[dict], header: bool) -> None:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, restval="")
        if header:
            writer.writeheader()
        writer.writerows([{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
                          for row in rows])

    def record(self, row: dict[str, Any]) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as handle:
            self._write(handle, [row], header=new)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("update", "frames") and isinstance(value, (int, float)):
                    name = key if "/" in key else f"train/{key}"
                    self.writer.add_scalar(name, value, global_step=int(row["frames"]))
            self.writer.flush()
        parts = [f"update {row['update']}", f"frames {row['frames']}"]
        if "fps" in row:
            parts.append(f"fps {row['fps']:.0f}")
        if "success_rate" in row:
            parts.append(f"success {row['success_rate']:.3f} ({row['episodes']} eps)")
        if "entropy" in row:
            parts.append(f"entropy {row['entropy']:.3f}")
        if "eval/success_rate" in row:
            parts.append(f"held-out success {row['eval/success_rate']:.3f}")
        log.info(" | ".join(parts))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class RLTrainer:
    """One fine-tuning run: built from a config, `run()` goes until `--frames`."""

    def __init__(self, config: RLConfig) -> None:
        config.check()
        self.config = config
        torch.set_num_threads(config.threads)
        self.root = storage.storage_root(config.storage)
        self.device = pick_device(config.device)
        self.files = storage.run_files(storage.model_dir(config.run_name(), self.root))
        resume = read_checkpoint(self.files.last) if self.files.last.is_file() else None
        self._check_same_run()
        self.agent, self.vocab = _starting_agent(config, self.root, self.device)
        if config.thought_loss_coef > 0 and not self.agent.config.use_thoughts:
            raise UserError("--thought-loss-coef needs a TC agent: this checkpoint is BC")
        self.train_seeds, self.eval_seeds = bin_seeds(config, self.root)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), config.lr, eps=config.optim_eps)
        self.generator = torch.Generator().manual_seed(derived_seed(config.seed, 2))
        self.settings = UpdateSettings(
            recurrence=config.recurrence, epochs=config.ppo_epochs, batch_size=config.batch_size,
            max_grad_norm=config.max_grad_norm, thought_loss_coef=config.thought_loss_coef,
            coefs=LossCoefficients(config.clip_eps, config.value_loss_coef, config.entropy_coef))
        envs = make_episodes(config.env, self.train_seeds, config.procs, config.seed,
                             with_bot=config.thought_loss_coef > 0)
        self.collector = Collector(self.agent, self.vocab, make_vector_envs(envs, config.workers),
                                   derived_seed(config.seed, 1), self.device)
        self.update, self.frames, self.seconds, self.best = 0, 0, 0.0, -1.0
        self.last_eval: float | None = None
        if resume is not None:
            self._restore(resume)
        storage.ensure_writable_dir(self.files.dir)
        storage.atomic_write_text(self.files.config,
                                  json.dumps(dataclasses.asdict(config), indent=2) + "\n")
        self.log = _Log(self.files.log, config.tb)
        self.log.truncate(self.update if resume is not None else -1)
        self.fresh = resume is None

    def _check_same_run(self) -> None:
        if not self.files.config.is_file():
            return
        saved = json.loads(self.files.config.read_text())
        current = dataclasses.asdict(self.config)
        different = sorted(key for key in current
                           if key not in MUTABLE and saved.get(key) != current[key])
        if different:
            raise UserError(f"{self.files.dir} holds a run with other settings ("
                            + ", ".join(f"{k}: {saved.get(k)!r} vs {current[k]!r}" for k in different)
                            + "); choose another --rl-model or delete the directory")

    def _restore(self, payload: dict) -> None:
        self.agent.load_state_dict(payload["state_dict"], strict=True)
        extra = payload["extra"]["rl"]
        self.optimizer.load_state_dict(extra["optimizer"])
        self.generator.set_state(extra["generator"])
        self.collector.load_state_dict(extra["collector"])
        self.update, self.frames, self.seconds = extra["update"], extra["frames"], extra["seconds"]
        self.best, self.last_eval = extra["best"], extra["last_eval"]
        log.info("resuming %s after update %d (%d frames)", self.files.dir, self.update, self.frames)

    def _extra(self) -> dict:
        return {"rl": {"optimizer": self.optimizer.state_dict(),
                       "generator": self.generator.get_state(),
                       "collector": self.collector.state_dict(), "update": self.update,
                       "frames": self.frames, "seconds": self.seconds, "best": self.best,
                       "last_eval": self.last_eval, "config": dataclasses.asdict(self.config)}}

    def save(self, path: Path) -> None:
        save_checkpoint(path, self.agent, self.vocab, self._extra())

    def evaluate(self) -> dict[str, float]:
        """Held-out seeds: greedy thoughts, sampled actions (the paper's protocol)."""
        options = RolloutOptions(sample_seed=self.config.seed, max_batch=64)
        records = run_episodes(self.agent, self.vocab, self.config.env, self.eval_seeds, options,
                               device=self.device)
        success = sum(r.success for r in records) / len(records)
        self.last_eval = success
        return {"eval/success_rate": success,
                "eval/mean_return": sum(r.reward for r in records) / len(records)}

    def _eval_and_keep_best(self, row: dict[str, Any]) -> None:
        row.update(self.evaluate())
        if row["eval/success_rate"] > self.best:
            self.best = row["eval/success_rate"]
            self.save(self.files.best)

    def run(self) -> RLSummary:
        config = self.config
        try:
            if self.fresh:
                row: dict[str, Any] = {"update": 0, "frames": 0, "episodes": 0, "seconds": 0.0}
                self._eval_and_keep_best(row)
                self.log.record(row)
                self.save(self.files.last)
            while self.frames < config.frames:
                started = time.perf_counter()
                exp, finished = self.collector.collect(config.frames_per_proc, config.discount,
                                                       config.gae_lambda)
                stats = ppo_update(self.agent, self.optimizer, exp, self.settings,
                                   self.generator, self.device)
                self.update += 1
                self.frames += config.frames_per_update
                elapsed = time.perf_counter() - started
                self.seconds += elapsed
                row = {"update": self.update, "frames": self.frames, "episodes": len(finished),
                       "seconds": self.seconds, "fps": config.frames_per_update / elapsed, **stats}
                if finished:
                    row["success_rate"] = sum(ret > 0 for ret, _, _ in finished) / len(finished)
                    row["mean_return"] = sum(ret for ret, _, _ in finished) / len(finished)
                    row["mean_length"] = sum(n for _, n, _ in finished) / len(finished)
                last = self.frames >= config.frames
                if self.update % config.eval_interval == 0 or last:
                    self._eval_and_keep_best(row)
                self.log.record(row)
                if self.update % config.save_interval == 0 or last:
                    self.save(self.files.last)
        finally:
            self.log.close()
            self.collector.envs.close()
        return RLSummary(self.files.dir, self.update, self.frames, self.best, self.last_eval)


def train_rl(config: RLConfig) -> RLSummary:
    """Fine-tune (or train from scratch) with PPO; rerunning the same command resumes. One
    process at a time per run directory (a second one stops with one line)."""
    run_dir = storage.model_dir(config.run_name(), storage.storage_root(config.storage))
    with writer_lock(run_dir, "run directory"), deterministic_kernels(pick_device(config.device)):
        return RLTrainer(config).run()

"""The main job end to end: demos -> TC and BC training -> level sets -> evaluation -> report.

Every stage is one of our commands with explicit flags (so the report can print the exact
command to rerun it, at this scale or the paper's), run through :mod:`babyai.pipeline.stages`, which
skips stages whose inputs and outputs are unchanged and lets a killed job resume where it
stopped. All files live under one storage root::

    demos/<name>.pkl, demos/<name>_valid.pkl
    models/<name>_tc/, models/<name>_bc/
    levels/<name>_levels.pkl
    reports/<name>/            README.md, curves.png, ood/, indist/, tc_agent.gif, stages.json
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from babyai.common import storage
from babyai.env.envs import check_level
from babyai.common.errors import UserError
from babyai.common.seeds import IN_DISTRIBUTION_START
from babyai.pipeline.stages import Stage, StageRunner

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    """Scale and names of one end-to-end run. Defaults finish in about 10 minutes on 2 cores."""

    name: str = "quickstart"
    """Prefix of every artefact under the storage root."""
    env: str = "BabyAI-MiniBossLevel-v0"
    """Level of the demos, of training and of evaluation (BossLevel's grammar, small world)."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""
    episodes: int = 1000
    """Training demonstrations."""
    valid_episodes: int = 100
    """Validation demonstrations (the `_valid` file)."""
    noise_rate: float = 0.01
    """Demo noise (the paper's 0.01)."""
    seed: int = 1
    """Base seed of demos and training."""
    workers: int = 2
    """Processes for demo generation, level sets and evaluation."""
    epochs: int = 6
    """Training epochs, the same for TC and BC (same demos, same frames)."""
    batch_size: int = 32
    """Episodes per optimizer step (both agents)."""
    recurrence: int = 20
    """BPTT window in steps."""
    memory_dim: int = 128
    """Recurrent memory size."""
    instr_dim: int = 64
    """Word embedding / language feature size."""
    image_dim: int = 64
    """Visual map channels."""
    lr: float = 1e-3
    """Adam learning rate."""
    stop_tf: int | None = 2
    """TC's teacher forcing is 1 until this epoch, then falls linearly to 0 at the last
    epoch (-1: always teacher-forced), so the lower level learns to act on the upper level's own thoughts (the paper:
    10 of 160 epochs). Measured with the other defaults: 48.0% success on 200 test levels
    with 2, 24.5% when always teacher-forced (README)."""
    val_episodes: int = 50
    """Fresh levels played at each validation."""
    levels_per_bin: int = 10
    """Seeds per out-of-distribution bin."""
    levels_max_draws: int = 1500
    """Bound on the seeds measured to fill the level-set bins."""
    eval_episodes: int = 200
    """In-distribution test levels per model."""
    gif_seed: int = IN_DISTRIBUTION_START + 12
    """Level shown in the report's GIF: an in-distribution test seed whose mission combines
    open, put-next and "after" (the default TC agent solves it in 59 steps)."""
    force: bool = False
    """Rerun every stage even if its inputs are unchanged."""
    extra_train_args: list[str] = field(default_factory=list, metadata={"flag": False})
    """Further flags passed to both training commands."""

    def check(self) -> None:
        check_level(self.env)
        for name in ("episodes", "valid_episodes", "epochs", "batch_size", "recurrence",
                     "memory_dim", "instr_dim", "image_dim", "val_episodes", "levels_per_bin",
                     "eval_episodes", "workers"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive")
        if not 0 <= self.noise_rate <= 1:
            raise UserError("--noise-rate must be in [0, 1]")


@dataclass
class Paths:
    """Where each artefact of a pipeline run lives."""

    root: Path
    name: str

    @property
    def demos(self) -> Path:
        return storage.demos_path(self.name, self.root)

    @property
    def valid_demos(self) -> Path:
        return storage.demos_path(self.name, self.root, valid=True)

    def model(self, kind: str) -> Path:
        return storage.model_dir(f"{self.name}_{kind}", self.root)

    @property
    def levels(self) -> Path:
        return self.root / "levels" / f"{self.name}_levels.pkl"

    @property
    def report(self) -> Path:
        return self.root / "reports" / self.name


def build_stages(config: PipelineConfig, paths: Paths) -> list[Stage]:
    """The chain of stages, each a command with explicit flags."""
    root = ["--storage", str(paths.root)]
    demos = Stage(
        "demos", "babyai.commands.make_agent_demos",
        ["--env", config.env, "--episodes", str(config.episodes),
         "--valid-episodes", str(config.valid_episodes), "--noise-rate", str(config.noise_rate),
         "--seed", str(config.seed), "--demos", config.name, "--workers", str(config.workers),
         *root],
        outputs=[paths.demos, paths.valid_demos])
    train_args = ["--env", config.env, "--demos", config.name, "--epochs", str(config.epochs),
                  "--batch-size", str(config.batch_size), "--recurrence", str(config.recurrence),
                  "--memory-dim", str(config.memory_dim), "--instr-dim", str(config.instr_dim),
                  "--image-dim", str(config.image_dim), "--lr", str(config.lr),
                  "--seed", str(config.seed), "--val-episodes", str(config.val_episodes),
                  "--tb", *config.extra_train_args, *root]
    stages = [demos]
    for kind, module in (("tc", "babyai.commands.train_tc"), ("bc", "babyai.commands.train_bc")):
        args = [*train_args, "--model", f"{config.name}_{kind}"]
        if kind == "tc" and config.stop_tf is not None and config.stop_tf >= 0:
            args += ["--stop-tf", str(config.stop_tf)]
        run_dir = paths.model(kind)
        stages.append(Stage(f"train_{kind}", module, args,
                            inputs=[paths.demos, paths.valid_demos],
                            outputs=[run_dir / "best.pt", run_dir / "last.pt", run_dir / "log.csv"],
                            workdir=run_dir))
    stages.append(Stage(
        "levels", "babyai.commands.make_testing_levels",
        ["--env", config.env, "--per-bin", str(config.levels_per_bin),
         "--max-draws", str(config.levels_max_draws), "--workers", str(config.workers),
         "--out", str(paths.levels), "--quiet", *root],
        outputs=[paths.levels]))
    models = [f"{config.name}_tc", f"{config.name}_bc"]  # names resolve to models/<name>/best.pt
    checkpoints = [storage.checkpoint_path(m, paths.root) for m in models]
    ood_dir = paths.report / "ood"
    stages.append(Stage(
        "evaluate_ood", "babyai.commands.evaluate_levels",
        ["--env", config.env, "--model", models[0], "--model", models[1],
         "--testing-levels-path", str(paths.levels), "--workers", str(config.workers),
         "--out", str(ood_dir), *root],
        inputs=[*checkpoints, paths.levels],
        outputs=[ood_dir / "results.csv", ood_dir / "success.png", ood_dir / "episodes.jsonl"],
        workdir=ood_dir))
    indist_dir = paths.report / "indist"
    stages.append(Stage(
        "evaluate_indist", "babyai.commands.evaluate",
        ["--env", config.env, "--model", models[0], "--model", models[1],
         "--untrained-like", models[0], "--episodes", str(config.eval_episodes),
         "--out", str(indist_dir), *root],
        inputs=checkpoints,
        outputs=[indist_dir / "summary.json", indist_dir / "episodes.jsonl"]))
    gif = paths.report / "tc_agent.gif"
    stages.append(Stage(
        "visualize", "babyai.commands.visualize",
        ["--model", models[0], "--env", config.env, "--seed", str(config.gif_seed),
         "--bot-thoughts", "--out", str(gif), *root],
        inputs=[checkpoints[0]], outputs=[gif]))
    return stages


def run_pipeline(config: PipelineConfig) -> Path:
    """Run (or resume) every stage, then write the report; returns the report's path."""
    from babyai.pipeline.report import write_report

    config.check()
    root = storage.storage_root(config.storage)
    paths = Paths(storage.ensure_writable_dir(root), config.name)
    storage.ensure_writable_dir(paths.report)
    storage.atomic_write_text(paths.report / "pipeline_config.json",
                              json.dumps(asdict(config), indent=2) + "\n")
    runner = StageRunner(paths.report / "stages.json", force=config.force)
    stages = build_stages(config, paths)
    started = time.perf_counter()
    # Each stage is a separate process: give it both cores' worth of torch threads only when
    # it runs alone, never more threads than cores (oversubscription is ruinous on 2 cores).
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, os.cpu_count() or 1)))}
    for number, stage in enumerate(stages, 1):
        log.info("stage %d/%d: %s", number, len(stages), stage.name)
        runner.run(stage, env=env)
    report = write_report(config, paths, stages, runner.timings)
    log.info("pipeline finished in %.0f s; report: %s", time.perf_counter() - started, report)
    return report

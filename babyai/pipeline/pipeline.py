"""The main job end to end: demos -> TC and BC training -> level sets -> evaluation -> report.

Every stage is one of our commands with explicit flags (so the report can print the exact
command to rerun it, at this scale or the paper's), run through :mod:`babyai.pipeline.stages`, which
skips stages whose inputs and outputs are unchanged and lets a killed job resume where it
stopped. All files live under one storage root::

    demos/<name>.pkl, demos/<name>_valid.pkl
    models/<name>_tc/, models/<name>_bc/
    levels/<name>_levels.pkl
    reports/<name>/            README.md, curves.png, ood/, indist/, tc_agent.gif, stages.json,
                               finetune/ (with --finetune)
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from babyai.common import storage
from babyai.pipeline.config import Paths, PipelineConfig
from babyai.pipeline.report import write_report
from babyai.pipeline.stages import Stage, StageRunner

log = logging.getLogger(__name__)


def training_threads() -> int:
    """Torch threads of the training stages: $OMP_NUM_THREADS, else every core.

    Fixed, not taken from the machine's current load (the training default), because the
    thread count can change floating-point sums and with them the trained weights: a rerun of
    the pipeline must give the same numbers whatever else the machine is doing.
    """
    return int(os.environ.get("OMP_NUM_THREADS", max(1, os.cpu_count() or 1)))


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
                  "--threads", str(training_threads()), "--tb", *config.extra_train_args, *root]
    stages = [demos]
    for kind, module in (("tc", "babyai.commands.train_tc"), ("bc", "babyai.commands.train_bc")):
        args = [*train_args, "--model", f"{config.name}_{kind}"]
        if kind == "tc" and config.stop_tf is not None and config.stop_tf >= 0:
            args += ["--stop-tf", str(config.stop_tf)]
        run = paths.run(kind)
        stages.append(Stage(f"train_{kind}", module, args,
                            inputs=[paths.demos, paths.valid_demos],
                            outputs=[run.best, run.last, run.log], workdir=run.dir))
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
         "--thought-ablation", "none,oracle,zeroed,shuffled",
         "--out", str(indist_dir), *root],
        inputs=checkpoints,
        outputs=[indist_dir / "summary.json", indist_dir / "episodes.jsonl"]))
    gif = paths.report / "tc_agent.gif"
    stages.append(Stage(
        "visualize", "babyai.commands.visualize",
        ["--model", models[0], "--env", config.env, "--seed", str(config.gif_seed),
         "--bot-thoughts", "--out", str(gif), *root],
        inputs=[checkpoints[0]], outputs=[gif]))
    if config.finetune:
        stages += finetune_stages(config, paths, models, checkpoints, ood_dir / "results.csv")
    return stages


def finetune_stages(config: PipelineConfig, paths: Paths, models: list[str],
                    checkpoints: list[Path], ood_results: Path) -> list[Stage]:
    """`--finetune`: a level set with enough seeds per bin, then PPO runs on the hardest bins
    where both agents fail zero-shot (bins chosen from the OOD evaluation)."""
    root = ["--storage", str(paths.root)]
    levels = Stage(
        "finetune_levels", "babyai.commands.make_testing_levels",
        ["--env", config.env, "--per-bin", str(config.finetune_levels_per_bin),
         "--max-draws", str(config.finetune_max_draws), "--workers", str(config.workers),
         "--out", str(paths.finetune_levels), "--quiet", *root],
        outputs=[paths.finetune_levels])
    out = paths.report / "finetune"
    finetune = Stage(
        "finetune", "babyai.commands.finetune",
        ["--env", config.env, "--tc-model", models[0], "--bc-model", models[1],
         "--ood-results", str(ood_results), "--levels", str(paths.finetune_levels),
         "--out", str(out), "--name", config.name, "--frames", str(config.finetune_frames),
         "--seeds", str(config.finetune_seeds), "--workers", str(config.workers), *root],
        inputs=[*checkpoints, ood_results, paths.finetune_levels],
        outputs=[out / "finetune.csv"], workdir=out)
    return [levels, finetune]


def run_pipeline(config: PipelineConfig) -> Path:
    """Run (or resume) every stage, then write the report; returns the report's path."""
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
    env = {"OMP_NUM_THREADS": str(training_threads())}
    for number, stage in enumerate(stages, 1):
        log.info("stage %d/%d: %s", number, len(stages), stage.name)
        runner.run(stage, env=env)
    report = write_report(config, paths, stages, runner.timings)
    log.info("pipeline finished in %.0f s; report: %s", time.perf_counter() - started, report)
    return report

"""A controlled study: TC, BC and TC without the thought loss on the same demos and frames.

The paper's Fig. 3 at any scale. Every agent x seed is one ordinary training run
(`tc-train` / `tc-train-bc`) on the same demonstrations, for the same frame budget, cut
into epochs of about `eval_every` frames; after every epoch the run plays the same
`eval_episodes` fixed levels (the trainer's validation, sampled actions by default), so the
curves of all agents share their x-axis and their test levels. After training, each TC run's
final weights also play those levels with the bot's thoughts (the oracle bound).

Runs are separate processes with one torch thread each, `workers` at a time (on 2 cores,
two processes of one thread beat one process of two); so are the evaluations of their final
weights. Everything resumes: finished runs are skipped by the trainer itself, a killed one
continues from its last epoch, the demos are a content-addressed stage, and evaluations of
final weights are cached beside them. Outputs, in <storage>/reports/<name>/:

    study.csv    one row per agent, seed and evaluation point (frames, success, interval)
    final.csv    one row per agent and seed at the end: own-thought and oracle success
    differences.csv  TC minus each other agent, paired by seed: at the final evaluation
                 and averaged over the last evaluations (mean, 95% interval, per seed);
                 with --final-episodes and --ood-levels, on those evaluations too
    ood.csv      with --ood-levels: every run's success per bin of the level set (for TC
                 also how often its thought is the bot's; for runs with an upper level,
                 their success with the bot's thoughts); ood/<run>/ holds each evaluation
    ood.png      with --ood-levels: success per mission bin, mean over seeds with a band,
                 dashed with the bot's thoughts
    study.png    success vs frames, mean over seeds with a band (min..max over seeds)
    README.md    the final table (mean over seeds, 95% interval across seeds) and commands
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import multiprocessing
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Sequence

import torch

from babyai.agent.checkpoint import load_agent
from babyai.agent.model import HISTORY_THOUGHTS, THOUGHT_DECODERS
from babyai.agent.rollout import ORACLE_VERSION, RolloutOptions, run_episodes
from babyai.common import storage
from babyai.common.cli import (choice_list, non_negative_float, non_negative_int, positive_int,
                               probability)
from babyai.common.errors import UserError
from babyai.common.runtime import torch_threads
from babyai.common.seeds import TRAINER_VALIDATION_START
from babyai.demos.files import read_demo_file
from babyai.evaluation.checks import check_level_set_env
from babyai.evaluation.levels import read_level_set
from babyai.evaluation.ood import LevelEvalConfig, evaluate_level_set
from babyai.evaluation.stats import (label_order, mean_interval, summarize_success,
                                     wilson_interval)
from babyai.evaluation.writers import write_csv
from babyai.pipeline.stages import Stage, StageRunner
from babyai.training.binding import BINDING_SWAPS
from babyai.training.thought_weights import check_thought_weights
from babyai.reports.curves import read_log
from babyai.reports.study_figure import plot_ood_bins, plot_study

log = logging.getLogger(__name__)

AGENTS = ("tc", "bc", "tc_nothought")
"""tc: Thought Cloning; bc: behavioural cloning (the lower level alone, actions only);
tc_nothought: the TC architecture with the thought loss removed (sg-coef 0) and no teacher
forcing: its lower level reads only its own upper level's thoughts, so no thought of the bot
reaches its training (with teacher forcing the bot's thoughts would still be an input)."""

LAST_EVALUATIONS = 3
"""The steadier of the two paired measures averages each run's last evaluations (one
evaluation of 100 levels moves by several points between neighbouring epochs)."""

DIFFERENCE_FIELDS = ["comparison", "measure", "seeds", "difference", "half_width", "per_seed"]



@dataclass
class StudyConfig:
    """What `tc-study` trains and compares (every field is a flag)."""

    name: str = "study"
    """Study name: demos/<name>.pkl, models/<name>_<agent>_s<seed>/, reports/<name>/."""
    env: str = "BabyAI-MiniBossLevel-v0"
    """Level of the demos, of training and of the evaluation levels."""
    agents: tuple[str, ...] = field(default=AGENTS, metadata={"type": choice_list(AGENTS),
                                                                  "metavar": "LIST"})
    """Comma-separated agents among tc, bc, tc_nothought."""
    seeds: int = field(default=3, metadata={"type": positive_int})
    """Training seeds per agent (first_seed, first_seed + 1, ...)."""
    first_seed: int = field(default=1, metadata={"type": non_negative_int})
    """Seed of the first run of each agent."""
    episodes: int = field(default=1000, metadata={"type": positive_int})
    """Training demonstrations (shared by every run)."""
    valid_episodes: int = field(default=100, metadata={"type": positive_int})
    """Validation demonstrations (the `_valid` file)."""
    noise_rate: float = 0.01
    """Demo noise (the paper's 0.01)."""
    slip_rate: float = field(default=0.0, metadata={"type": probability})
    """Demo slips: wrong pick-ups recorded with the bot's recovery (`tc-make-demos
    --slip-rate`; 0 = none, as in the paper)."""
    demo_seed: int = field(default=1, metadata={"type": non_negative_int})
    """Base seed of the demonstrations."""
    frames: int = field(default=400_000, metadata={"type": positive_int})
    """Training frames per run (about: whole epochs of whole episodes)."""
    eval_every: int = field(default=50_000, metadata={"type": positive_int})
    """Frames between evaluations (one epoch of the runs)."""
    eval_episodes: int = field(default=100, metadata={"type": positive_int})
    """Fixed levels played at each evaluation (the same for every agent and seed)."""
    eval_argmax: bool = False
    """Greedy actions at evaluation (default: sampled, as the paper evaluates)."""
    memory_dim: int = field(default=128, metadata={"type": positive_int})
    instr_dim: int = field(default=64, metadata={"type": positive_int})
    image_dim: int = field(default=64, metadata={"type": positive_int})
    batch_size: int = field(default=32, metadata={"type": positive_int})
    recurrence: int = field(default=20, metadata={"type": positive_int})
    lr: float = 1e-3
    sg_coef: float = 2.0
    """Weight of TC's thought loss (tc_nothought uses 0 and no teacher forcing)."""
    thought_loss_reduction: str = field(default="sum", metadata={"choices": ("sum", "mean")})
    """sum (the original's) or mean over a thought's tokens."""
    thought_weights: str | None = field(default=None, metadata={
        "type": check_thought_weights, "metavar": "SPEC"})
    """TC's per-family thought-loss weights (the trainer's --thought-weights): `balanced`
    or FAMILY=W,... (default: all 1)."""
    counterfactual_coef: float = field(default=0.0, metadata={"type": non_negative_float})
    """TC's counterfactual pick-up term (the trainer's --counterfactual-coef; 0 = off)."""
    binding_coef: float = field(default=0.0, metadata={"type": non_negative_float})
    """TC's binding term (the trainer's --binding-coef; 0 = off)."""
    binding_swap: str = field(default="colour", metadata={"choices": BINDING_SWAPS})
    """How TC's binding term changes the thought (the trainer's --binding-swap)."""
    tf_fraction: float = 1 / 3
    """TC's teacher forcing is 1 for this fraction of the epochs, then falls linearly to 0
    at the last epoch (the paper: 10 of 160 epochs; 1 keeps it always on)."""
    tf_floor: float = 0.0
    """TC's teacher forcing never falls below this probability (the trainer's --tf-floor)."""
    history_thoughts: str = field(default="in_use", metadata={"choices": HISTORY_THOUGHTS})
    """What TC's thought history reads in training (the trainer's --history-thoughts)."""
    thought_decoder: str = field(default="memory", metadata={"choices": THOUGHT_DECODERS})
    """What the TC agents' thought decoder reads (the trainer's --thought-decoder): the
    upper memory (the paper) or also the mission's words."""
    lower_heads: int = field(default=1, metadata={"type": positive_int})
    """Attention heads of every agent's lower level (TC's and BC's; the trainer's
    --lower-heads)."""
    front_cell: bool = False
    """Every agent's lower level (TC's and BC's) also reads the cell in front of the agent
    (the trainer's --front-cell)."""
    oracle: bool = True
    """After training, also play each TC run's final weights with the bot's thoughts (on the
    evaluation levels and, with --ood-levels, on the level set)."""
    final_episodes: int = field(default=0, metadata={"type": non_negative_int})
    """After training, also play each run's final weights on this many levels (from the
    evaluations' first seed, so they include the --eval-episodes ones): a larger sample
    than one evaluation's (about ± 5 points per run at 300 levels); 0: off."""
    ood_levels: Path | None = None
    """A level set drawn from --env (tc-make-levels; a name under <storage>/levels or a
    path): after training, every run's final weights play it (tc-evaluate-levels, TC with
    --thought-agreement), compared on the mission bins below and from --ood-hard-from."""
    ood_hard_from: int = field(default=5, metadata={"type": positive_int})
    """First cognitive-difficulty (mission) bin of the hard group (the paper's gap widens
    with the mission's difficulty)."""
    workers: int = field(default=2, metadata={"type": positive_int})
    """Training processes at a time, one torch thread each."""
    storage: Path | None = None
    """Storage root (default: $TC_STORAGE, else ./storage)."""

    def check(self) -> None:
        if self.eval_every > self.frames:
            raise UserError(f"--eval-every ({self.eval_every}) exceeds --frames ({self.frames})")
        for name in ("tf_fraction", "tf_floor"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1], "
                                f"got {getattr(self, name)}")
        if self.tf_floor > 0 and self.tf_fraction == 1:
            raise UserError("--tf-floor has no effect with --tf-fraction 1 (teacher forcing "
                            "is then always 1)")

    @property
    def epochs(self) -> int:
        return max(1, round(self.frames / self.eval_every))


@dataclass
class StudyRun:
    """One agent x seed: its training command and where it writes."""

    agent: str
    seed: int
    name: str
    module: str
    args: list[str]

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args]

    @property
    def thinks(self) -> bool:
        """Whether the agent has an upper level (TC, with or without the thought loss)."""
        return self.agent != "bc"


@dataclass
class StudyResult:
    curves: list[dict]
    final: list[dict]
    table: list[dict]
    differences: list[dict]
    outputs: dict[str, Path]


def plan_runs(config: StudyConfig, mean_length: float, root: Path) -> list[StudyRun]:
    """The training command of every agent and seed (epochs of about `eval_every` frames)."""
    epoch_length = max(1, round(config.eval_every / mean_length))
    stop_tf = min(config.epochs - 1, round(config.tf_fraction * config.epochs))
    common = ["--env", config.env, "--demos", config.name, "--episodes", str(config.episodes),
              "--epochs", str(config.epochs), "--epoch-length", str(epoch_length),
              "--memory-dim", str(config.memory_dim), "--instr-dim", str(config.instr_dim),
              "--image-dim", str(config.image_dim), "--batch-size", str(config.batch_size),
              "--recurrence", str(config.recurrence), "--lr", str(config.lr),
              "--val-episodes", str(config.eval_episodes), "--val-interval", "1",
              "--val-seed", str(TRAINER_VALIDATION_START),
              "--val-argmax" if config.eval_argmax else "--no-val-argmax",
              "--threads", "1", "--storage", str(root)]
    if config.front_cell:  # a study made before these flags plans as then
        common.append("--front-cell")
    if config.lower_heads != 1:
        common += ["--lower-heads", str(config.lower_heads)]
    runs = []
    for agent in config.agents:
        for seed in range(config.first_seed, config.first_seed + config.seeds):
            name = f"{config.name}_{agent}_s{seed}"
            args = [*common, "--model", name, "--seed", str(seed)]
            if agent == "bc":
                runs.append(StudyRun(agent, seed, name, "babyai.commands.train_bc", args))
                continue
            args += ["--thought-loss-reduction", config.thought_loss_reduction,
                     "--history-thoughts", config.history_thoughts]
            if config.thought_decoder != "memory":  # a study made before the flag plans as then
                args += ["--thought-decoder", config.thought_decoder]
            if agent == "tc_nothought":  # no thought of the bot reaches its training
                args += ["--sg-coef", "0.0", "--no-teacher-forcing"]
            else:
                args += ["--sg-coef", str(config.sg_coef)]
                if config.thought_weights is not None:
                    args += ["--thought-weights", config.thought_weights]
                if config.counterfactual_coef:
                    args += ["--counterfactual-coef", str(config.counterfactual_coef)]
                if config.binding_coef:
                    args += ["--binding-coef", str(config.binding_coef),
                             "--binding-swap", config.binding_swap]
                if config.tf_fraction < 1:
                    args += ["--stop-tf", str(stop_tf), "--tf-floor", str(config.tf_floor)]
            runs.append(StudyRun(agent, seed, name, "babyai.commands.train_tc", args))
    return runs


def run_study(config: StudyConfig) -> StudyResult:
    """Demos, every training run (in parallel), the evaluations of the final weights
    (oracle bound, --final-episodes, --ood-levels), then the report."""
    config.check()
    root = storage.storage_root(config.storage)
    ood_levels = _ood_levels(config, root)  # a bad level set fails before any training
    report = storage.ensure_writable_dir(storage.report_dir(config.name, root))
    demos = storage.demos_path(config.name, root)
    StageRunner(report / "stages.json").run(Stage(
        "demos", "babyai.commands.make_agent_demos",
        ["--env", config.env, "--episodes", str(config.episodes),
         "--valid-episodes", str(config.valid_episodes), "--noise-rate", str(config.noise_rate),
         "--seed", str(config.demo_seed), "--demos", config.name, "--workers",
         str(config.workers), "--storage", str(root)]
        + (["--slip-rate", str(config.slip_rate)] if config.slip_rate else []),
        outputs=[demos, storage.demos_path(config.name, root, valid=True)]))
    lengths = [len(episode.actions) for episode in read_demo_file(demos).episodes]
    runs = plan_runs(config, mean(lengths), root)
    _train_all(runs, root, config.workers)
    run_curves = [_curve(run, root, config.eval_episodes) for run in runs]
    curves = [row for curve in run_curves for row in curve]
    final, ood_rows = [], []
    for run, (row, bins) in zip(runs, evaluate_runs(runs, run_curves, root, config,
                                                     ood_levels, report / "ood")):
        final.append(row)
        ood_rows += [{"agent": run.agent, "seed": run.seed, **item} for item in bins]
    table = summarize_agents(final)
    differences = paired_differences(curves, final)
    outputs = {"curves": report / "study.csv", "final": report / "final.csv",
               "differences": report / "differences.csv",
               "figure": report / "study.png", "report": report / "README.md"}
    write_csv(outputs["curves"], curves)
    write_csv(outputs["final"], final)
    write_csv(outputs["differences"], differences, DIFFERENCE_FIELDS)  # empty: one agent
    scale = f"{config.episodes} demos, {config.seeds} seed(s)"
    if ood_rows:
        outputs["ood"] = report / "ood.csv"
        outputs["ood_figure"] = report / "ood.png"
        write_csv(outputs["ood"], ood_rows)
        plot_ood_bins(ood_rows, outputs["ood_figure"],
                      title=f"{config.env} on {Path(str(config.ood_levels)).stem}: {scale}")
    plot_study(curves, outputs["figure"], title=f"{config.env}: {scale}")
    storage.atomic_write_text(outputs["report"],
                              _markdown(config, runs, table, differences, ood_rows))
    return StudyResult(curves, final, table, differences, outputs)


def _train_all(runs: list[StudyRun], root: Path, workers: int) -> None:
    """Every run as its own process, `workers` at a time; a failure names its log."""
    pending, active = list(runs), []
    while pending or active:
        while pending and len(active) < workers:
            run = pending.pop(0)
            run_dir = storage.ensure_writable_dir(storage.model_dir(run.name, root))
            handle = open(run_dir / "study.out", "a")
            log.info("[%s] %s", run.name, " ".join(run.command()[1:]))
            active.append((run, subprocess.Popen(run.command(), stdout=handle,
                                                 stderr=subprocess.STDOUT), handle))
        time.sleep(0.5)
        for item in list(active):
            run, process, handle = item
            if process.poll() is None:
                continue
            handle.close()
            active.remove(item)
            if process.returncode != 0:
                for _, other, other_handle in active:
                    other.terminate()
                    other.wait()
                    other_handle.close()
                raise UserError(f"training run {run.name} failed (exit code {process.returncode});"
                                f" see {storage.model_dir(run.name, root) / 'study.out'};"
                                " rerun the study to resume")
            log.info("[%s] finished", run.name)


def _curve(run: StudyRun, root: Path, episodes: int) -> list[dict]:
    rows = []
    for row in read_log(storage.model_dir(run.name, root) / "log.csv"):
        if "val/success_rate" not in row:
            continue
        successes = round(row["val/success_rate"] * episodes)
        low, high = wilson_interval(successes, episodes)
        rows.append({"agent": run.agent, "seed": run.seed, "epoch": int(row["epoch"]),
                     "frames": int(row["frames"]), "success_rate": row["val/success_rate"],
                     "ci_low": low, "ci_high": high, "episodes": episodes,
                     "thought_match": row.get("val/thought_match", "")})
    return rows


def evaluate_runs(runs: list[StudyRun], run_curves: list[list[dict]], root: Path,
                  config: StudyConfig, ood_levels: Path | None,
                  ood_dir: Path) -> list[tuple[dict, list[dict]]]:
    """Every run's final row and OOD bins, `workers` runs at a time.

    Each run is evaluated in one process of one torch thread, like its training: with
    --final-episodes and --ood-levels this phase costs minutes per run, and one process
    would leave all but one core idle. Results are cached per run, so a rerun is free.
    """
    jobs = [(run, curve, root, config, ood_levels, ood_dir / run.name)
            for run, curve in zip(runs, run_curves)]
    workers = min(config.workers, len(jobs))
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(_evaluate_run(*job))
            log.info("[%s] evaluated", job[0].name)
        return results
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_evaluate_run, *job): job[0].name for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()  # a failed evaluation stops the study here, with its error
                log.info("[%s] evaluated", futures[future])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # not the runs still queued
            raise
        return [future.result() for future in futures]


def _evaluate_run(run: StudyRun, curve: list[dict], root: Path, config: StudyConfig,
                  ood_levels: Path | None, ood_out: Path) -> tuple[dict, list[dict]]:
    """One run's final row (with the pooled OOD columns) and its OOD bins."""
    with torch_threads(1):
        row = _final(run, curve, root, config)
        bins = [] if ood_levels is None else ood_bins(run, root, config, ood_levels, ood_out)
    if ood_levels is not None:
        row.update(ood_groups(bins, config.ood_hard_from))
    return row, bins


def _final(run: StudyRun, curve: list[dict], root: Path, config: StudyConfig) -> dict:
    """The last evaluation point of a run, its oracle-thought success (TC runs) and its
    success on --final-episodes levels."""
    if not curve:
        raise UserError(f"{run.name} has no evaluation in its log.csv")
    row = {"agent": run.agent, "seed": run.seed, "frames": curve[-1]["frames"],
           "success_rate": curve[-1]["success_rate"], "oracle_success_rate": "",
           "final_episodes": config.final_episodes, "final_eval_success_rate": "",
           "thought_match": curve[-1]["thought_match"]}
    if config.oracle and run.thinks:
        row["oracle_success_rate"] = replay_success(run, root, config, config.eval_episodes,
                                                    "oracle", "oracle.json")
    if config.final_episodes:
        row["final_eval_success_rate"] = replay_success(run, root, config, config.final_episodes,
                                                        "none", "final_eval.json")
    return row


def replay_success(run: StudyRun, root: Path, config: StudyConfig, episodes: int,
                   ablation: str, cache_name: str) -> float:
    """Success of the run's final weights on `episodes` levels from the evaluations' first
    seed, its lower level reading `ablation` thoughts (as `tc-evaluate` plays them).

    Cached in the run directory, keyed by the checkpoint's size and modification time, the
    evaluation settings and the oracle's version, so a rerun is free.
    """
    path = storage.checkpoint_path(run.name, root, which="last")
    cache = storage.model_dir(run.name, root) / cache_name
    key = [path.stat().st_size, path.stat().st_mtime_ns, episodes, config.eval_argmax,
           ORACLE_VERSION]
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["success_rate"]
    loaded = load_agent(path, root)
    seeds = range(TRAINER_VALIDATION_START, TRAINER_VALIDATION_START + episodes)
    with torch_threads(1):
        records = run_episodes(loaded.agent, loaded.vocab, config.env, list(seeds),
                               RolloutOptions(argmax=config.eval_argmax, thought_ablation=ablation))
    rate = summarize_success(records).success_rate
    storage.atomic_write_text(cache, json.dumps({"key": key, "success_rate": rate}) + "\n")
    return rate


def _ood_levels(config: StudyConfig, root: Path) -> Path | None:
    """The --ood-levels file, checked against --env (None without the flag)."""
    if config.ood_levels is None:
        return None
    path = storage.existing_levels_path(config.ood_levels, root)
    check_level_set_env(read_level_set(path), path, config.env)
    return path


def ood_bins(run: StudyRun, root: Path, config: StudyConfig, levels: Path,
             out: Path) -> list[dict]:
    """The run's final weights on every bin of the level set (`tc-evaluate-levels`; its
    finished chunks are kept in `out`, so a rerun is free). With `config.oracle` a run with
    an upper level (as for the oracle bound in distribution) also plays it with the bot's
    thoughts (in `out/oracle`): the bound per bin, which shows whether a deficit on hard
    missions is its thoughts' or its lower level's."""
    checkpoint = str(storage.checkpoint_path(run.name, root, which="last"))
    result = evaluate_level_set(LevelEvalConfig(
        env=config.env, models=[checkpoint], levels_path=levels, storage=root, out=out,
        argmax=config.eval_argmax, thought_agreement=run.agent == "tc"))
    oracle: dict[tuple[str, str], float] = {}
    if config.oracle and run.thinks:
        bound = evaluate_level_set(LevelEvalConfig(
            env=config.env, models=[checkpoint], levels_path=levels, storage=root,
            out=out / "oracle", argmax=config.eval_argmax, thought_ablation=("oracle",)))
        oracle = {(row.diff_type, row.diff): row.success_rate for row in bound.rows}
    return [{"diff_type": row.diff_type, "diff": row.diff, "episodes": row.episodes,
             "success_rate": row.success_rate,
             "thought_match": "" if row.thought_match is None else row.thought_match,
             "oracle_success_rate": oracle.get((row.diff_type, row.diff), "")}
            for row in result.rows if row.episodes]


def ood_groups(bins: list[dict], hard_from: int) -> dict:
    """Success pooled over the mission bins below `hard_from` and from it on (the columns
    `ood_easy_*` and `ood_hard_*` of final.csv, with the bins' labels)."""
    groups: dict[str, list[dict]] = {"easy": [], "hard": []}
    for item in bins:
        if item["diff_type"] == "mission" and str(item["diff"]).isdigit():
            groups["hard" if int(item["diff"]) >= hard_from else "easy"].append(item)
    row = {}
    for group, items in groups.items():
        episodes = sum(item["episodes"] for item in items)
        labels = sorted(int(item["diff"]) for item in items)
        span = f"{labels[0]}-{labels[-1]}" if len(labels) > 1 else "".join(map(str, labels))
        row[f"ood_{group}_bins"] = span
        for key in ("success_rate", "oracle_success_rate"):
            known = episodes and all(item.get(key, "") != "" for item in items)
            row[f"ood_{group}_{key}"] = (
                sum(item[key] * item["episodes"] for item in items) / episodes
                if known else "")
    return row


def summarize_agents(final: list[dict]) -> list[dict]:
    """Per agent: mean final success over seeds with a 95% t-interval across seeds."""
    table = []
    for agent in dict.fromkeys(row["agent"] for row in final):
        rows = [row for row in final if row["agent"] == agent]
        entry = {"agent": agent, "seeds": len(rows), "frames": rows[0]["frames"],
                 **{key: rows[0][key] for key in ("final_episodes", "ood_easy_bins",
                                                   "ood_hard_bins") if key in rows[0]}}
        for key in ("success_rate", "oracle_success_rate", "final_eval_success_rate",
                    "ood_easy_success_rate", "ood_hard_success_rate",
                    "ood_easy_oracle_success_rate", "ood_hard_oracle_success_rate"):
            values = [float(row[key]) for row in rows if row.get(key, "") != ""]
            if values:
                entry[key], entry[key + "_half_width"] = mean_interval(values)
                entry[key + "_per_seed"] = values
        table.append(entry)
    return table


def paired_differences(curves: list[dict], final: Sequence[dict] = (), reference: str = "tc",
                       last: int = LAST_EVALUATIONS) -> list[dict]:
    """`reference` minus every other agent, seed by seed, with a 95% t-interval.

    Runs of the same seed share the demos, their order and the evaluation levels, so the
    difference within a seed removes what those contribute to both; the interval is across
    seeds. Measures: the final evaluation, the mean of each run's last `last` evaluations
    (steadier), and where `final` has them the --final-episodes evaluation and the two
    groups of OOD mission bins. Only seeds that both agents finished are paired.
    """
    measures: dict[str, dict[tuple[str, int], float]] = {"final": {}, f"mean of last {last}": {}}
    by_run: dict[tuple[str, int], list[float]] = {}
    for row in sorted(curves, key=lambda r: (r["agent"], int(r["seed"]), int(r["frames"]))):
        by_run.setdefault((row["agent"], int(row["seed"])), []).append(float(row["success_rate"]))
    for run, rates in by_run.items():
        measures["final"][run] = rates[-1]
        measures[f"mean of last {last}"][run] = mean(rates[-last:])
    for row in final:
        run = (row["agent"], int(row["seed"]))
        if row.get("final_eval_success_rate", "") != "":
            measure = f"{int(row['final_episodes'])} levels"
            measures.setdefault(measure, {})[run] = float(row["final_eval_success_rate"])
        for group in ("easy", "hard"):
            if row.get(f"ood_{group}_success_rate", "") != "":
                measure = f"OOD mission bins {row[f'ood_{group}_bins']}"
                measures.setdefault(measure, {})[run] = float(row[f"ood_{group}_success_rate"])
    agents = list(dict.fromkeys(row["agent"] for row in curves))
    rows = []
    for other in (agent for agent in agents if agent != reference):
        for measure, values_by_run in measures.items():
            seeds = sorted(seed for agent, seed in values_by_run
                           if agent == other and (reference, seed) in values_by_run)
            if not seeds:
                continue
            values = [values_by_run[reference, seed] - values_by_run[other, seed]
                      for seed in seeds]
            difference, half_width = mean_interval(values)
            rows.append({"comparison": f"{reference} - {other}", "measure": measure,
                         "seeds": len(seeds), "difference": difference,
                         "half_width": half_width,
                         "per_seed": " ".join(f"{value:+.3f}" for value in values)})
    return rows


def format_table(table: list[dict]) -> str:
    """One line per agent: final success, per seed, oracle bound, and the optional larger
    and out-of-distribution evaluations where the study ran them."""
    columns = [("oracle_success_rate", lambda entry: "oracle-thought success")]
    optional = [("final_eval_success_rate",
                 lambda entry: f"{entry['final_episodes']}-level success"),
                ("ood_easy_success_rate", lambda entry: f"OOD bins {entry['ood_easy_bins']}"),
                ("ood_hard_success_rate", lambda entry: f"OOD bins {entry['ood_hard_bins']}"),
                ("ood_easy_oracle_success_rate",
                 lambda entry: f"OOD bins {entry['ood_easy_bins']}, bot's thoughts"),
                ("ood_hard_oracle_success_rate",
                 lambda entry: f"OOD bins {entry['ood_hard_bins']}, bot's thoughts")]
    columns += [(key, title) for key, title in optional if any(key in e for e in table)]
    titles = [title(next((entry for entry in table if key in entry), table[0]))
              for key, title in columns]
    lines = ["| agent | seeds | frames | final success (mean ± 95% across seeds) | per seed | "
             + " | ".join(titles) + " |", "| --- " * (5 + len(columns)) + "|"]
    for entry in table:
        def cell(key: str) -> str:
            if key not in entry:
                return "–"
            half = entry[key + "_half_width"]
            spread = "" if math.isnan(half) else f" ± {100 * half:.1f}"
            return f"{100 * entry[key]:.1f}%{spread}"
        per_seed = ", ".join(f"{100 * v:.0f}" for v in entry.get("success_rate_per_seed", []))
        lines.append(f"| {entry['agent']} | {entry['seeds']} | {entry['frames']:,} | "
                     f"{cell('success_rate')} | {per_seed} | "
                     + " | ".join(cell(key) for key, _ in columns) + " |")
    return "\n".join(lines)


def format_ood_table(ood_rows: list[dict]) -> str:
    """Success per mission bin of the level set, mean over seeds (TC: how often its thought
    is the bot's, and its success with the bot's thoughts)."""
    rows = [row for row in ood_rows if row["diff_type"] == "mission"]
    bins = sorted(dict.fromkeys(str(row["diff"]) for row in rows), key=label_order)
    lines = ["| agent | " + " | ".join(f"bin {b}" for b in bins) + " |",
             "| --- " * (1 + len(bins)) + "|"]
    for agent in dict.fromkeys(row["agent"] for row in rows):
        for key, title in (("success_rate", agent),
                           ("thought_match", f"{agent}: thought = bot's"),
                           ("oracle_success_rate", f"{agent}: with the bot's thoughts")):
            cells = []
            for label in bins:
                values = [float(row[key]) for row in rows if row["agent"] == agent
                          and str(row["diff"]) == label and row[key] != ""]
                cells.append(f"{100 * mean(values):.0f}" if values else "–")
            if any(cell != "–" for cell in cells):
                lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_differences(differences: list[dict]) -> str:
    lines = ["| comparison | measure | seeds | difference (points, ± 95% across seeds) "
             "| per seed |", "| --- | --- | --- | --- | --- |"]
    for row in differences:
        half = row["half_width"]
        spread = "" if math.isnan(half) else f" ± {100 * half:.1f}"
        per_seed = ", ".join(f"{100 * float(v):+.1f}" for v in row["per_seed"].split())
        lines.append(f"| {row['comparison']} | {row['measure']} | {row['seeds']} | "
                     f"{100 * row['difference']:+.1f}{spread} | {per_seed} |")
    return "\n".join(lines)


def _markdown(config: StudyConfig, runs: list[StudyRun], table: list[dict],
              differences: list[dict], ood_rows: list[dict]) -> str:
    settings = json.dumps({k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in asdict(config).items() if k != "storage"}, default=str)
    commands = "\n".join("python -m " + " ".join([run.module, *run.args]) for run in runs)
    paired = (f"Paired by seed (differences.csv):\n\n{format_differences(differences)}\n\n"
              if differences else "")
    if ood_rows:
        paired += (f"Out of distribution, per cognitive-difficulty bin of `{config.ood_levels}` "
                   f"(ood.csv; mean over seeds, %):\n\n{format_ood_table(ood_rows)}\n\n"
                   "![success per OOD bin](ood.png)\n\n")
    return (f"# Study `{config.name}`\n\n![success vs frames](study.png)\n\n"
            f"{format_table(table)}\n\n{paired}Settings: `{settings}`\n\n"
            f"Training commands:\n\n```\n{commands}\n```\n")

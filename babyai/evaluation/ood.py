"""Out-of-distribution evaluation: many models over the bins of a level set (the paper's Fig. 4a).

Each model plays every seed of the level set once (a seed listed in several bins is counted
in each); seeds are cut into chunks that run in worker processes, and every finished chunk
is saved under `<out>/.partial/`, so a killed run resumes. Outputs: `results.csv`,
`episodes.jsonl`, `success.png` and `mission_types.csv`.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import math
import multiprocessing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from babyai.agent.checkpoint import LoadedAgent, load_agent
from babyai.agent.records import (EpisodeRecord, oracle_step_share, thought_agreement,
                                  thought_mismatches)
from babyai.agent.rollout import (THOUGHT_ABLATIONS, RolloutOptions, ThoughtCondition,
                                  run_episodes, thought_conditions)
from babyai.common.cli import choice_list, non_negative_int, positive_int, probability_list
from babyai.common.errors import UserError
from babyai.common.runtime import torch_threads
from babyai.common.storage import atomic_write, checkpoint_path, ensure_writable_dir
from babyai.env.thoughts import FAMILY_NAMES
from babyai.evaluation.declaration import score_records
from babyai.evaluation.difficulty import DIFFICULTY_KINDS, DIFFICULTY_TITLES
from babyai.evaluation.checks import (check_level_set_env, check_oracle_options,
                                      warn_unreadable_missions)
from babyai.evaluation.levels import read_level_set
from babyai.evaluation.stats import (SuccessSummary, label_order, success_by_mission_type,
                                     summarize_success)
from babyai.evaluation.writers import read_jsonl, write_csv, write_jsonl

logger = logging.getLogger(__name__)




@dataclass
class LevelEvalConfig:
    """What `tc-evaluate-levels` evaluates and where it writes (every field is a flag)."""

    env: str
    """BabyAI level id the level set was drawn from, e.g. BabyAI-BossLevel-v0."""
    models: list[str] = field(metadata={"name": "--model"})
    """Model name under <storage>/models or a `.pt` path; repeat to put several models on
    one figure (e.g. TC and BC)."""
    levels_path: Path = field(metadata={"name": "--testing-levels-path"})
    """Level-set pickle `{'demo'|'mission': {label: {seed: info}}}` (a name under
    <storage>/levels or a path; only the seeds are read)."""
    storage: Path | None = None
    """Storage root (default: $TC_STORAGE, else ./storage)."""
    out: Path | None = None
    """Output directory for results.csv, episodes.jsonl, success.png and mission_types.csv
    (default: <storage>/reports/<level set name>)."""
    argmax: bool = False
    """Greedy actions (default: sampled, as in the paper)."""
    episodes_per_bin: int | None = field(default=None, metadata={"type": positive_int})
    """Evaluate at most this many seeds per bin, the first ones in the file's order
    (default: all)."""
    workers: int = field(default=1, metadata={"type": positive_int})
    """Processes; each loads the model and runs chunks of seeds with one torch thread
    (1: in-process)."""
    thought_ablation: tuple[str, ...] = field(
        default=("none",), metadata={"type": choice_list(THOUGHT_ABLATIONS), "metavar": "LIST"})
    """Comma-separated conditions for TC models, reported side by side: none (own
    thoughts), oracle (the bot's thoughts: the paper's upper bound), zeroed (no thought),
    shuffled (another episode's thought); e.g. none,oracle,zeroed,shuffled."""
    oracle_thoughts: bool = False
    """Same as adding `oracle` to --thought-ablation."""
    oracle_share: tuple[float, ...] = field(
        default=(1.0,), metadata={"type": probability_list, "metavar": "LIST"})
    """With the oracle condition: comma-separated shares of the bot's subgoals handed to the
    lower level, one series each (e.g. 0,0.25,0.5,0.75,1). Each time the bot's thought
    changes it is read, until its next change, with that probability, else the agent's own:
    how good must the thoughts be before they pay. results.csv's oracle_step_share says
    which share of steps read the bot's thought."""
    oracle_families: tuple[str, ...] = field(
        default=(), metadata={"type": choice_list(FAMILY_NAMES), "metavar": "LIST"})
    """With the oracle condition: hand over only the bot's thoughts of these families
    (comma-separated, e.g. explore,open; default every family): which thoughts carry the
    gain."""
    thought_agreement: bool = False
    """Ask the bot for its thought at every state a TC model visits (own thoughts only) and
    report per bin how often the model's thought equals it, exactly and in family: where
    the upper level stops thinking the bot's thoughts as missions get harder (costs about a
    third more time). thought_families.csv splits each bin by the family of the bot's
    thought (open, pickup, drop, explore...): which kinds of step it misses;
    thought_errors.csv sorts each bin's steps into match, stale or early (a timing error),
    other object (the right intention about the wrong object) and other family."""
    sample_seed: int = field(default=0, metadata={"type": non_negative_int,
                                                   "aliases": ["--seed"]})
    """Seed of the per-episode action sampling (`--seed` is its older name)."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    max_batch: int = field(default=64, metadata={"type": positive_int})
    """Environments stepped together per process."""
    chunk: int = field(default=256, metadata={"flag": False})
    """Seeds per job at most (fewer so every worker gets some); finished jobs are saved so
    a killed run resumes."""
    threads: int = field(default=1, metadata={"type": positive_int})
    """torch threads per process. One is the safe choice on a shared machine (an
    oversubscribed multi-threaded torch was about 15x slower on 2 busy cores)."""


    def conditions(self) -> tuple[str, ...]:
        extra = ("oracle",) if self.oracle_thoughts else ()
        return tuple(dict.fromkeys(tuple(self.thought_ablation) + extra))


@dataclass
class LevelRow:
    """One CSV row: a model's success (and declaration score) on one difficulty bin."""

    model: str
    diff_type: str
    diff: str
    success_rate: float
    ci_low: float
    ci_high: float
    episodes: int
    declaration_score: float | None = None
    declared_actions: int = 0
    thought_match: float | None = None
    """Share of the bin's steps whose thought equals the bot's (with --thought-agreement)."""
    intention_match: float | None = None
    """Share of the bin's steps whose thought is of the bot's family (open, pickup...)."""
    oracle_step_share: float | None = None
    """Share of the bin's steps whose lower level read the bot's thought (oracle series)."""


@dataclass
class LevelEvalResult:
    rows: list[LevelRow]
    mission_types: dict[str, dict[str, SuccessSummary]]
    """series label -> mission type -> success."""
    records: dict[str, dict[int, EpisodeRecord]]
    """series label -> seed -> record."""
    outputs: dict[str, Path]


def select_seeds(levels: dict, cap: int | None) -> dict[tuple[str, Any], list[int]]:
    """(kind, label) -> seeds to evaluate, at most `cap` per bin, in the file's order."""
    bins: dict[tuple[str, Any], list[int]] = {}
    for kind in DIFFICULTY_KINDS:
        for label in sorted(levels.get(kind, {}), key=label_order):
            seeds = [int(seed) for seed in levels[kind][label]]
            bins[(kind, label)] = seeds[:cap] if cap else seeds
    return bins


@dataclass(frozen=True)
class _Series:
    """One line of the reports: a model under one thought condition."""

    label: str
    checkpoint: str
    model: str
    """The model's own label, without the condition."""
    condition: ThoughtCondition = ThoughtCondition()

    def describe(self) -> dict[str, Any]:
        """What episodes.jsonl says about the series of each line."""
        condition = self.condition
        oracle = condition.ablation == "oracle"
        return {"model_name": self.model, "thought_ablation": condition.ablation,
                "oracle_share": condition.oracle_share if oracle else None,
                "oracle_families": list(condition.oracle_families) if oracle else None}


@dataclass(frozen=True)
class _Job:
    """One chunk of seeds of one series."""

    series: _Series
    env: str
    seeds: tuple[int, ...]
    argmax: bool
    sample_seed: int
    device: str
    max_batch: int
    bot_thoughts: bool = False

    def key(self) -> str:
        """A stable name for this job's saved result (changes if the checkpoint changes)."""
        checkpoint, condition = self.series.checkpoint, self.series.condition
        stat = Path(checkpoint).stat()
        # optional parts only when set, so older saved jobs keep their key
        text = repr((checkpoint, stat.st_size, stat.st_mtime_ns, self.env, self.seeds,
                     condition.ablation, self.argmax, self.sample_seed)
                    + ((True,) if self.bot_thoughts else ())
                    + ((condition.oracle_share,) if condition.oracle_share < 1.0 else ())
                    + ((condition.oracle_families,) if condition.oracle_families else ()))
        return hashlib.sha1(text.encode()).hexdigest()[:16]


_WORKER_AGENTS: dict[str, LoadedAgent] = {}


def _run_job(job: _Job, progress: bool = False) -> list[EpisodeRecord]:
    """Run one chunk of seeds (in a worker process or in-process); models are cached."""
    checkpoint, condition = job.series.checkpoint, job.series.condition
    if checkpoint not in _WORKER_AGENTS:
        _WORKER_AGENTS[checkpoint] = load_agent(checkpoint, Path("."), job.device)
    loaded = _WORKER_AGENTS[checkpoint]
    options = RolloutOptions(argmax=job.argmax, max_batch=job.max_batch,
                             thought_ablation=condition.ablation,
                             oracle_share=condition.oracle_share,
                             oracle_families=condition.oracle_families,
                             sample_seed=job.sample_seed,
                             bot_thoughts=job.bot_thoughts, progress=progress)
    return run_episodes(loaded.agent, loaded.vocab, job.env, list(job.seeds), options,
                        device=job.device)


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _model_label(name: str) -> str:
    path = Path(name)
    if name.endswith(".pt"):
        return path.parent.name if path.stem in ("best", "last") and path.parent.name else path.stem
    return name


def _run_jobs(jobs: list[_Job], partial_dir: Path, workers: int,
              threads: int) -> dict[_Job, list[EpisodeRecord]]:
    """Run jobs, reusing results saved by an earlier (killed) run of the same evaluation."""
    done: dict[_Job, list[EpisodeRecord]] = {}
    todo = []
    for job in jobs:
        saved = partial_dir / f"{job.key()}.jsonl"
        if saved.is_file():
            done[job] = [EpisodeRecord.from_json(item) for item in read_jsonl(saved)]
        else:
            todo.append(job)
    if done:
        logger.info("resuming: %d of %d jobs already done", len(done), len(jobs))

    def save(job: _Job, records: list[EpisodeRecord]) -> None:
        write_jsonl(partial_dir / f"{job.key()}.jsonl", (r.to_json() for r in records))
        done[job] = records

    bar = tqdm(total=sum(len(job.seeds) for job in todo), desc="evaluate", unit="ep")
    try:
        if workers <= 1:
            for job in todo:
                save(job, _run_job(job))
                bar.update(len(job.seeds))
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                        initializer=_worker_init,
                                                        initargs=(threads,)) as pool:
                futures = {pool.submit(_run_job, job): job for job in todo}
                for future in concurrent.futures.as_completed(futures):
                    job = futures[future]
                    save(job, future.result())
                    bar.update(len(job.seeds))
    finally:
        bar.close()
    return done


def evaluate_level_set(config: LevelEvalConfig) -> LevelEvalResult:
    """Evaluate every model on every bin of a level set and write the reports.

    A seed listed in several bins (a level set's 'demo' and 'mission' halves usually share
    seeds) is played once per model and counted in each of its bins.
    """
    check_oracle_options(config.oracle_share, config.conditions(), config.oracle_families)
    levels = read_level_set(config.levels_path)
    check_level_set_env(levels, config.levels_path, config.env)
    bins = select_seeds(levels, config.episodes_per_bin)
    seeds = list(dict.fromkeys(seed for bin_seeds in bins.values() for seed in bin_seeds))
    if not seeds:
        raise UserError(f"{config.levels_path} lists no seeds")
    out = ensure_writable_dir(Path(config.out))
    partial_dir = ensure_writable_dir(out / ".partial")

    series: list[_Series] = []
    thinking: set[str] = set()  # checkpoints of TC models
    ablations = config.conditions()
    for name in config.models:
        path = checkpoint_path(name, Path(config.storage))
        loaded = load_agent(path, Path(config.storage), config.device)  # fail early; TC or BC?
        _WORKER_AGENTS[str(path)] = loaded  # reused by in-process jobs
        warn_unreadable_missions(loaded.vocab, config.env, seeds, str(name))
        label = _model_label(name)
        if loaded.agent.config.use_thoughts:
            thinking.add(str(path))
        if "none" in ablations or not loaded.agent.config.use_thoughts:
            series.append(_Series(label, str(path), label))
        for condition in thought_conditions(ablations, config.oracle_share,
                                            config.oracle_families):
            if condition.ablation == "none":
                continue
            if not loaded.agent.config.use_thoughts:
                logger.warning("%s is a BC checkpoint: no %s-thoughts run for it", label,
                               condition.ablation)
                continue
            series.append(_Series(condition.label(label), str(path), label, condition))
    labels = [entry.label for entry in series]
    ablation_of = {entry.label: entry.condition.ablation for entry in series}
    if len(set(labels)) != len(labels):
        raise UserError(f"two --model values share the name {labels}; give distinct names")

    chunk = max(1, min(config.chunk, math.ceil(len(seeds) / config.workers)))
    jobs = [_Job(entry, config.env, tuple(seeds[start:start + chunk]), config.argmax,
                 config.sample_seed, config.device, config.max_batch,
                 bot_thoughts=(config.thought_agreement and entry.condition.ablation == "none"
                               and entry.checkpoint in thinking))
            for entry in series
            for start in range(0, len(seeds), chunk)]
    logger.info("%d seeds x %d series in %d jobs, %d worker(s)", len(seeds), len(series),
                len(jobs), config.workers)
    with torch_threads(config.threads):
        finished = _run_jobs(jobs, partial_dir, config.workers, config.threads)

    records: dict[str, dict[int, EpisodeRecord]] = {label: {} for label in labels}
    for job, job_records in finished.items():
        records[job.series.label].update({record.seed: record for record in job_records})

    rows: list[LevelRow] = []
    family_rows: list[dict[str, Any]] = []
    error_rows: list[dict[str, Any]] = []
    by_type: dict[str, dict[str, SuccessSummary]] = {}
    for label in labels:
        for (kind, diff), bin_seeds in bins.items():
            group = [records[label][seed] for seed in bin_seeds]
            summary = summarize_success(group)
            declaration = score_records(group)
            # under the bot's (or no) thoughts the comparison says nothing: own thoughts only
            agreement = thought_agreement(group if ablation_of[label] == "none" else [])
            oracle_share = (oracle_step_share(group) if ablation_of[label] == "oracle"
                            else None)
            rows.append(LevelRow(label, kind, str(diff), summary.success_rate, summary.ci_low,
                                 summary.ci_high, summary.episodes, declaration.score,
                                 declaration.total,
                                 agreement.value if agreement.steps else None,
                                 agreement.intention_value if agreement.steps else None,
                                 oracle_share))
            if agreement.steps:
                mismatches = thought_mismatches(group)
                error_rows.append({"model": label, "diff_type": kind, "diff": str(diff),
                                   "steps": mismatches.steps, **mismatches.shares(),
                                   "other_object_foreign": mismatches.foreign_objects,
                                   "other_object_in_mission": mismatches.mission_objects})
            family_rows += [{"model": label, "diff_type": kind, "diff": str(diff),
                             "bot_thought_family": family, "steps": steps,
                             "thought_match": matched / steps, "intention_match": intended / steps}
                            for family, (matched, intended, steps)
                            in sorted(agreement.by_family.items())]
        by_type[label] = success_by_mission_type(records[label].values())

    described = {entry.label: entry.describe() for entry in series}
    outputs = _write_level_reports(out, rows, by_type, records, described, bins, family_rows,
                                   error_rows)
    return LevelEvalResult(rows, by_type, records, outputs)


def _write_level_reports(out: Path, rows: list[LevelRow],
                         by_type: dict[str, dict[str, SuccessSummary]],
                         records: dict[str, dict[int, EpisodeRecord]],
                         described: dict[str, dict[str, Any]],
                         bins: dict[tuple[str, Any], list[int]],
                         family_rows: list[dict[str, Any]],
                         error_rows: list[dict[str, Any]]) -> dict[str, Path]:
    outputs = {"csv": out / "results.csv", "jsonl": out / "episodes.jsonl",
               "png": out / "success.png", "mission_types": out / "mission_types.csv"}
    write_csv(outputs["csv"], [asdict(row) for row in rows],
              [spec.name for spec in fields(LevelRow)])
    if family_rows:  # with --thought-agreement: which kinds of step the upper level misses
        outputs["thought_families"] = out / "thought_families.csv"
        write_csv(outputs["thought_families"], family_rows, list(family_rows[0]))
    if error_rows:  # ... and what kind of error each mismatch is
        outputs["thought_errors"] = out / "thought_errors.csv"
        write_csv(outputs["thought_errors"], error_rows, list(error_rows[0]))
    write_csv(outputs["mission_types"],
              [{"model": label, "mission_type": name, "success_rate": summary.success_rate,
                "ci_low": summary.ci_low, "ci_high": summary.ci_high,
                "episodes": summary.episodes}
               for label, types in by_type.items() for name, summary in types.items()],
              ["model", "mission_type", "success_rate", "ci_low", "ci_high", "episodes"])
    membership: dict[int, list[list[Any]]] = {}
    for (kind, diff), bin_seeds in bins.items():
        for seed in bin_seeds:
            membership.setdefault(seed, []).append([kind, diff])
    write_jsonl(outputs["jsonl"], ({"model": label, **described[label],
                                    "bins": membership.get(seed, []), **record.to_json()}
                                   for label, by_seed in records.items()
                                   for seed, record in by_seed.items()))
    plot_level_success(rows, outputs["png"])
    return outputs


def plot_level_success(rows: Sequence[LevelRow], path: Path) -> None:
    """Success per bin with 95% intervals, one line per model, one panel per difficulty type
    (the paper's Fig. 4a layout)."""
    kinds = [kind for kind in DIFFICULTY_KINDS if any(r.diff_type == kind for r in rows)]
    figure = Figure(figsize=(6 * max(1, len(kinds)), 4.2))
    FigureCanvasAgg(figure)
    models = list(dict.fromkeys(row.model for row in rows))
    for panel, kind in enumerate(kinds):
        axes = figure.add_subplot(1, len(kinds), panel + 1)
        diffs = sorted({row.diff for row in rows if row.diff_type == kind}, key=label_order)
        for model in models:
            by_diff = {row.diff: row for row in rows if row.model == model
                       and row.diff_type == kind and row.episodes}
            xs = [i for i, diff in enumerate(diffs) if diff in by_diff]
            ys = [100 * by_diff[diffs[i]].success_rate for i in xs]
            low = [ys[j] - 100 * by_diff[diffs[i]].ci_low for j, i in enumerate(xs)]
            high = [100 * by_diff[diffs[i]].ci_high - ys[j] for j, i in enumerate(xs)]
            axes.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=model)
        axes.set_xticks(range(len(diffs)), diffs)
        axes.set_ylim(-2, 102)
        axes.set_xlabel(DIFFICULTY_TITLES[kind])
        axes.set_ylabel("success rate (%)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=110))


def format_level_table(rows: Sequence[LevelRow]) -> str:
    """A printable table: one line per bin, one success column per model."""
    models = list(dict.fromkeys(row.model for row in rows))
    keys = list(dict.fromkeys((row.diff_type, row.diff) for row in rows))
    cell = {(row.model, row.diff_type, row.diff): row for row in rows}
    agreement = any(row.thought_match is not None for row in rows)
    width = max(30 if agreement else 22, *(len(model) + 2 for model in models))
    header = f"{'type':<8}{'bin':>6}{'n':>6}" + "".join(f"{m:>{width}}" for m in models)
    legend = "  success % [95% interval], declaration score in ()"
    if agreement:
        legend += ", then % of steps whose thought is the bot's: exact|same family"
    lines = [header, legend]
    for kind, diff in keys:
        first = cell[(models[0], kind, diff)]
        text = f"{kind:<8}{diff:>6}{first.episodes:>6}"
        for model in models:
            row = cell[(model, kind, diff)]
            if not row.episodes:
                text += f"{'-':>{width}}"
                continue
            part = f"{100 * row.success_rate:.0f} [{100 * row.ci_low:.0f},{100 * row.ci_high:.0f}]"
            if row.declaration_score is not None:
                part += f" ({row.declaration_score:.2f})"
            if row.thought_match is not None and row.intention_match is not None:
                part += f" {100 * row.thought_match:.0f}|{100 * row.intention_match:.0f}"
            text += f"{part:>{width}}"
        lines.append(text)
    return "\n".join(lines)

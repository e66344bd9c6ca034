"""Two studies of the same agents compared seed by seed: did a change of settings help?

`tc-study` pairs agents within one study (TC against BC on the same demos and seeds). An
ablation of a setting the study holds fixed (the model's dims, the demos' noise or slips,
the thought loss's weight) is two studies: the same agents and seeds, one flag apart.
Seed N of one study and seed N of the other start from the same demo order and play the
same evaluation levels, so their difference removes what those contribute to both, as
`tc-study`'s own paired differences do. This module reads what the two studies wrote
(`study.csv`, `final.csv`, `ood.csv`, each run's `config.json`, the demo file's settings)
and computes, per agent and measure, the second study minus the first with a 95%
t-interval across seeds.
"""
from __future__ import annotations

import csv
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Iterable

from babyai.common import storage
from babyai.common.errors import UserError
from babyai.demos.files import read_demo_meta
from babyai.demos.generate import recorded_setting
from babyai.evaluation.stats import mean_interval
from babyai.pipeline.study import LAST_EVALUATIONS
from babyai.training.config import TrainConfig

COMPARISON_FIELDS = ["agent", "measure", "seeds", "first", "second", "difference",
                     "half_width", "per_seed"]

IGNORED_SETTINGS = {"model", "demos", "seed", "storage", "threads", "device"}
"""Run settings that differ between any two studies (names, seeds, where and how fast)."""

DEMO_SETTINGS = ("env", "episodes", "seed", "noise_rate", "slip_rate", "filter_steps",
                 "minigrid")
"""The generation settings of two studies' demo files that are compared."""


@dataclass
class StudyRecord:
    """What one study wrote: per agent, measure and seed, one value."""

    name: str
    values: dict[str, dict[str, dict[int, float]]]  # agent -> measure -> seed -> value
    settings: dict[str, dict]  # agent -> the training settings of its first run
    demos_hash: str | None  # content hash of the training demos (stages.json)
    demos_settings: dict = field(default_factory=dict)  # how the training demos were made


def read_study(name: str, root: Path) -> StudyRecord:
    """The measures of study `name` (reports/<name>/ and its runs' config.json)."""
    try:
        return _read_study(name, root)
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise UserError(f"study {name!r} in {storage.report_dir(name, root)}: "
                        f"not what tc-study writes ({type(error).__name__}: {error})") from error


def _read_study(name: str, root: Path) -> StudyRecord:
    report = storage.report_dir(name, root)
    final_path = report / "final.csv"
    if not final_path.is_file():
        raise UserError(f"{final_path}: no such file (has `tc-study --name {name}` finished?)")
    values: dict[str, dict[str, dict[int, float]]] = {}

    def put(agent: str, measure: str, seed: int, value: str | float) -> None:
        if value != "":
            values.setdefault(agent, {}).setdefault(measure, {})[seed] = float(value)

    curves: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for row in _read_csv(report / "study.csv"):
        curves.setdefault((row["agent"], int(row["seed"])), []).append(
            (int(row["frames"]), float(row["success_rate"])))
    for (agent, seed), points in curves.items():
        rates = [rate for _, rate in sorted(points)][-LAST_EVALUATIONS:]
        put(agent, "final evaluation", seed, rates[-1])
        if len(rates) > 1:
            put(agent, f"mean of last {LAST_EVALUATIONS} evaluations", seed, sum(rates) / len(rates))
    final_rows = _read_csv(final_path)
    for row in final_rows:
        agent, seed = row["agent"], int(row["seed"])
        if row.get("final_eval_success_rate", "") != "":
            put(agent, f"{int(float(row['final_episodes']))} levels", seed,
                row["final_eval_success_rate"])
        put(agent, "oracle thoughts, evaluation levels", seed, row.get("oracle_success_rate", ""))
        put(agent, "thought match, last evaluation", seed, row.get("thought_match", ""))
        for group in ("easy", "hard"):
            bins = row.get(f"ood_{group}_bins", "")
            if bins:
                put(agent, f"OOD bins {bins}", seed, row.get(f"ood_{group}_success_rate", ""))
                put(agent, f"OOD bins {bins}, oracle thoughts", seed,
                    row.get(f"ood_{group}_oracle_success_rate", ""))
    ood_path = report / "ood.csv"
    if ood_path.is_file():
        for (agent, seed, bins), match in _ood_thought_match(_read_csv(ood_path),
                                                             final_rows).items():
            put(agent, f"OOD bins {bins}, thought match", seed, match)
    settings = {}
    for agent, measures in values.items():
        seeds = sorted({seed for per_seed in measures.values() for seed in per_seed})
        config = storage.model_dir(f"{name}_{agent}_s{seeds[0]}", root) / "config.json"
        settings[agent] = json.loads(config.read_text()) if config.is_file() else {}
    demos = storage.demos_path(name, root)
    demos_settings = read_demo_meta(demos) if demos.is_file() else {}
    return StudyRecord(name, values, settings, _demos_hash(report / "stages.json"),
                       demos_settings)


def _ood_thought_match(rows: Iterable[dict],
                       final_rows: Iterable[dict]) -> dict[tuple[str, int, str], float]:
    """Per run and group of mission bins (the groups final.csv's rows name), the thought
    match averaged over the group's bins, each weighted by its episodes."""
    groups: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
    for row in final_rows:
        for group in ("easy", "hard"):
            span = row.get(f"ood_{group}_bins", "")
            if span:
                low, _, high = span.partition("-")
                groups.setdefault((row["agent"], int(row["seed"])), []).append(
                    (span, int(low), int(high or low)))
    sums: dict[tuple[str, int, str], list[float]] = {}
    for row in rows:
        if row["diff_type"] != "mission" or not row["diff"].isdigit() or row["thought_match"] == "":
            continue
        run = (row["agent"], int(row["seed"]))
        for span, low, high in groups.get(run, []):
            if low <= int(row["diff"]) <= high:
                total = sums.setdefault((*run, span), [0.0, 0.0])
                total[0] += float(row["thought_match"]) * int(row["episodes"])
                total[1] += int(row["episodes"])
    return {key: weighted / episodes for key, (weighted, episodes) in sums.items() if episodes}


def _demos_hash(stages: Path) -> str | None:
    if not stages.is_file():
        return None
    outputs = json.loads(stages.read_text()).get("demos", {}).get("outputs", {})
    train = [digest for path, digest in outputs.items() if not path.endswith("_valid.pkl")]
    return train[0] if train else None


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"{path}: no such file (has the study finished?)")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def compare(first: StudyRecord, second: StudyRecord,
            agents: Iterable[str] | None = None) -> list[dict]:
    """`second` minus `first`, per agent and measure, over the seeds both have."""
    common = [agent for agent in first.values if agent in second.values]
    chosen = list(agents) if agents is not None else common
    missing = [agent for agent in chosen if agent not in common]
    if missing:
        raise UserError(f"agent(s) {', '.join(missing)} not in both studies "
                        f"({first.name}: {', '.join(first.values)}; "
                        f"{second.name}: {', '.join(second.values)})")
    rows = []
    for agent in chosen:
        for measure, before in first.values[agent].items():
            after = second.values[agent].get(measure, {})
            seeds = sorted(seed for seed in before if seed in after)
            if not seeds:
                continue
            differences = [after[seed] - before[seed] for seed in seeds]
            difference, half_width = mean_interval(differences)
            rows.append({"agent": agent, "measure": measure, "seeds": len(seeds),
                         "first": sum(before[s] for s in seeds) / len(seeds),
                         "second": sum(after[s] for s in seeds) / len(seeds),
                         "difference": difference, "half_width": half_width,
                         "per_seed": " ".join(f"{value:+.3f}" for value in differences)})
    if not rows:
        raise UserError(f"{first.name} and {second.name} share no seed of "
                        f"{', '.join(chosen)} with a measure in common")
    return rows


def setting_changes(first: StudyRecord, second: StudyRecord) -> list[str]:
    """What differs between the two studies' training runs (and their demos)."""
    changes = []
    # a run made before a setting existed ran with its default
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    for agent in (a for a in first.settings if a in second.settings):
        before, after = first.settings[agent], second.settings[agent]
        for key in sorted(set(before) | set(after)):
            old, new = before.get(key, defaults.get(key)), after.get(key, defaults.get(key))
            if key not in IGNORED_SETTINGS and old != new:
                changes.append(f"{agent} {key}: {old} -> {new}")
    if first.demos_settings and second.demos_settings:
        for key in DEMO_SETTINGS:
            before = recorded_setting(first.demos_settings, key)
            after = recorded_setting(second.demos_settings, key)
            if before != after:
                changes.append(f"demos {key}: {before} -> {after}")
    if first.demos_hash and second.demos_hash:
        changes.append("same demos (content hash)" if first.demos_hash == second.demos_hash
                       else "different demos (content hash)")
    return changes


def format_comparison(rows: list[dict], first: str, second: str) -> str:
    """A markdown table: both studies' means and the paired difference (points)."""
    lines = [f"| agent | measure | seeds | {first} | {second} | difference (± 95%) | per seed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        spread = "" if row["half_width"] != row["half_width"] else f" ± {100 * row['half_width']:.1f}"
        per_seed = ", ".join(f"{100 * float(v):+.1f}" for v in row["per_seed"].split())
        lines.append(f"| {row['agent']} | {row['measure']} | {row['seeds']} | "
                     f"{100 * row['first']:.1f} | {100 * row['second']:.1f} | "
                     f"{100 * row['difference']:+.1f}{spread} | {per_seed} |")
    return "\n".join(lines)

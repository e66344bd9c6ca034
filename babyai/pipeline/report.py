"""The pipeline's report: one Markdown page with the numbers, the pictures and the commands."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

from babyai.common.storage import atomic_write_text
from babyai.pipeline.config import Paths, PipelineConfig
from babyai.pipeline.stages import Stage
from babyai.reports.curves import plot_curves

PAPER_SCALE = """\
tc-make-demos --env BabyAI-BossLevel-v0 --episodes 1000000 --valid-episodes 512 \\
    --noise-rate 0.01 --demos boss1m --workers 8      # or --shard i --num-shards n on a cluster
tc-train --env BabyAI-BossLevel-v0 --demos boss1m --memory-dim=2048 --recurrence=80 \\
    --batch-size=180 --instr-arch=attgru --instr-dim=256 --val-interval 2 --log-interval 2 --lr 5e-4 \\
    --epochs 160 --epoch-length 51200 --seed 0 --val-seed 500000000000 --sg-coef 2 --warm-start --stop-tf 10
tc-train-bc --env BabyAI-BossLevel-v0 --demos boss1m --memory-dim=2048 --recurrence=80 \\
    --batch-size=180 --instr-dim=256 --val-interval 2 --log-interval 2 --lr 5e-4 \\
    --epochs 160 --epoch-length 51200 --seed 0 --val-seed 500000000000 --warm-start
tc-make-levels --env BabyAI-BossLevel-v0 --per-bin 250 --workers 8
tc-evaluate-levels --env BabyAI-BossLevel-v0 --model boss1m_tc_seed0 --model boss1m_bc_seed0 \\
    --testing-levels-path BossLevel_testing_levels --workers 8"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def indist_section(summary_path: Path) -> list[str]:
    """In-distribution success per model, overall and per mission type."""
    summary = json.loads(summary_path.read_text())
    rows = []
    for name, entry in summary.items():
        declaration = entry.get("declaration", {}).get("declaration_score")
        agreement = entry.get("thought_agreement", {}).get("exact_match")
        intention = entry.get("thought_agreement", {}).get("intention_match")
        following = entry.get("thought_following", {}).get("named_object_rate")
        rows.append([name, _pct(entry["success_rate"]),
                     f"[{_pct(entry['ci_low'])}, {_pct(entry['ci_high'])}]", entry["episodes"],
                     f"{entry['mean_length']:.1f}", _pct(declaration) if declaration is not None else "–",
                     _pct(agreement) if agreement is not None else "–",
                     _pct(intention) if intention is not None else "–",
                     _pct(following) if following is not None else "–"])
    lines = ["## In-distribution success", "",
             f"Fresh {next(iter(summary.values()))['env']} levels (seeds never used by demos, "
             "validation or level sets), sampled actions; 95% Wilson intervals. "
             "`untrained` is a freshly initialised agent of TC's architecture. The TC rows in "
             "parentheses change only what its lower level reads: the bot's thought for the "
             "state (oracle: the paper's upper bound), no thought (zeroed), another episode's "
             "thought (shuffled). 'thought = bot's' is how often TC's own thought equals the "
             "bot's thought for the state it is in, 'same intention' how often it is at "
             "least of the same family (open, pick up, explore...: right step, perhaps "
             "the wrong object); 'picks the named object' is, of the "
             "objects picked up while the thought in use named one to pick up, the share that "
             "were that object (does the lower level do what the thought says?).", ""]
    lines += _table(["model", "success", "95% CI", "episodes", "mean length",
                     "future-action declaration", "thought = bot's", "same intention",
                     "picks the named object"], rows)
    summary = {name: entry for name, entry in summary.items()
               if entry.get("thought_ablation", "none") == "none"}
    types = list(next(iter(summary.values()))["by_mission_type"])
    lines += ["", "Success by mission type (a mission counts under every type it contains):", ""]
    type_rows = [[name] + [f"{_pct(entry['by_mission_type'][t]['success_rate'])} "
                           f"(n={entry['by_mission_type'][t]['episodes']})" for t in types]
                 for name, entry in summary.items()]
    lines += _table(["model", *types], type_rows)
    return lines


def ood_section(results_csv: Path, plot: Path, report_dir: Path) -> list[str]:
    """Zero-shot success per behavioural and cognitive difficulty bin."""
    rows = _read_csv(results_csv)
    lines = ["## Out-of-distribution success", "",
             "Levels bucketed by the length of the bot's solution (`demo`) and by mission "
             "complexity (`mission`); see `docs/data.md`.", "",
             f"![success per bin]({plot.relative_to(report_dir).as_posix()})", ""]
    models = list(dict.fromkeys(row["model"] for row in rows))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if int(row["episodes"]) == 0:
            continue  # a bin the level set could not fill
        cells.setdefault((row["diff_type"], row["diff"]), {})[row["model"]] = (
            f"{_pct(float(row['success_rate']))} [{_pct(float(row['ci_low']))}, "
            f"{_pct(float(row['ci_high']))}] (n={row['episodes']})")
    table = [[kind, label, *(by_model.get(model, "–") for model in models)]
             for (kind, label), by_model in cells.items()]
    lines += _table(["difficulty", "bin", *models], table)
    return lines


def training_section(config: PipelineConfig, paths: Paths, curves: Path) -> list[str]:
    lines = ["## Training", "",
             f"Both agents: {config.episodes} demos of {config.env} (noise {config.noise_rate}), "
             f"{config.epochs} epochs, batch {config.batch_size}, recurrence {config.recurrence}, "
             f"memory {config.memory_dim}, instr {config.instr_dim}, image {config.image_dim}, "
             f"lr {config.lr}.", "",
             f"![training curves]({curves.name})", ""]
    rows = []
    for kind in ("tc", "bc"):
        log_rows = _read_csv(paths.run(kind).log)
        if not log_rows:
            continue
        last = log_rows[-1]
        successes = [float(r["val/success_rate"]) for r in log_rows if r.get("val/success_rate")]
        rows.append([kind.upper(), last["epoch"], last["frames"], f"{float(last['seconds']):.0f}",
                     f"{float(last['train/fps']):.0f}",
                     _pct(max(successes)) if successes else "n/a"])
    lines += _table(["agent", "epochs", "frames", "training seconds", "frames/s (last epoch)",
                     "best validation success"], rows)
    lines += ["", f"TensorBoard: `tensorboard --logdir {paths.root / 'models'}`"]
    return lines


def finetune_section(directory: Path) -> list[str]:
    """With `--finetune`: held-out success of every PPO run and the success-vs-frames figure."""
    rows = _read_csv(directory / "finetune.csv")
    if not (directory / "finetune.csv").is_file():
        return []
    lines = ["## Reinforcement-learning fine-tuning (the paper's Fig. 4b)", "",
             "PPO on the hardest bins of each difficulty kind where both agents were below 30% "
             "zero-shot; success on the bin's held-out seeds (greedy thoughts, sampled actions) "
             "at the start, at the end and at its best.", ""]
    if not rows:
        return lines + ["No bin qualified (see the finetune stage's log).", ""]
    lines += _table(["bin", "agent", "seed", "frames", "start", "last", "best"],
                    [[f"{row['diff_type']} {row['diff']}", row["agent"].upper(), row["seed"],
                      row["frames"], _pct(float(row["start"])), _pct(float(row["last"])),
                      _pct(float(row["best"]))] for row in rows])
    if (directory / "finetune.png").is_file():
        lines += ["", "![fine-tuning curves](finetune/finetune.png)"]
    return lines


def write_report(config: PipelineConfig, paths: Paths, stages: Sequence[Stage],
                 timings: dict[str, float]) -> Path:
    """Write `reports/<name>/README.md` (and the training-curves PNG) from the stage outputs."""
    report_dir = paths.report
    curves = plot_curves({"TC": paths.run("tc").log, "BC": paths.run("bc").log},
                         report_dir / "curves.png", title=f"{config.env}: TC vs BC")
    lines = [f"# Thought Cloning vs behavioural cloning on {config.env}", "",
             f"Report of `tc-pipeline --name {config.name}`; every number below was "
             "measured by the stages listed at the end.", ""]
    lines += indist_section(report_dir / "indist" / "summary.json") + [""]
    lines += training_section(config, paths, curves) + [""]
    lines += ood_section(report_dir / "ood" / "results.csv", report_dir / "ood" / "success.png",
                         report_dir) + [""]
    lines += finetune_section(report_dir / "finetune") + [""]
    lines += ["## What the TC agent thinks", "",
              "Mission, the agent's current thought, the bot's thought for the same state, and "
              "the action, at every step:", "", "![TC agent](tc_agent.gif)", ""]
    lines += ["## Stages", "", "Rerun any stage with its command (rerunning "
              "`tc-pipeline` skips stages whose inputs did not change):", ""]
    lines += _table(["stage", "seconds", "command"],
                    [[stage.name, f"{timings.get(stage.name, 0):.0f}", f"`{stage.shell_command()}`"]
                     for stage in stages])
    lines += ["", "## At paper scale", "", "```", PAPER_SCALE, "```", ""]
    path = report_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path

"""tc-oracle-curve: success against the share of subgoals handed over, over models."""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pytest
import torch

from babyai.agent.checkpoint import save_checkpoint
from babyai.agent.model import ModelConfig, build_agent
from babyai.commands import evaluate_levels, oracle_curve
from babyai.common.errors import UserError
from babyai.data.vocab import Vocabulary
from babyai.evaluation.oracle_curve import oracle_curve as curve, reference_levels
from babyai.evaluation.stats import mean_interval

LEVEL = "BabyAI-GoToRedBallNoDists-v0"


def line(model: str, ablation: str, share: float | None, seed: int, level: int, success: bool,
         length: int = 10, oracle_steps: int = 0) -> dict:
    label = model if ablation == "none" else f"{model} ({ablation} {share})"
    return {"model": label, "model_name": model, "thought_ablation": ablation,
            "oracle_share": share, "bins": [["demo", 25], ["mission", level]], "seed": seed,
            "mission": "go to the red ball", "success": success, "reward": float(success),
            "length": length, "actions": [], "oracle_steps": oracle_steps}


def write_lines(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in lines))
    return path


def test_curve_by_hand(tmp_path):
    """Two models, two levels per group; means, intervals, paired differences and the share
    of steps reading the bot's thought as counted by hand; zeroed series stay off the curve."""
    wins = {  # (model, share) -> successes on levels 1, 2 (bins 1-4) and 6, 7 (bins 5-9)
        ("a", 0.0): (1, 0, 0, 0), ("a", 0.5): (1, 1, 1, 0), ("a", 1.0): (1, 1, 1, 1),
        ("b", 0.0): (0, 0, 0, 0), ("b", 0.5): (1, 0, 0, 0), ("b", 1.0): (1, 1, 1, 0)}
    lines = []
    for (model, share), successes in wins.items():
        ablation = "none" if share == 0 else "oracle"
        for seed, (level, success) in enumerate(zip((1, 2, 6, 7), successes)):
            lines.append(line(model, ablation, None if share == 0 else share, seed, level,
                              bool(success), oracle_steps=int(10 * share)))
    lines.append(line("a", "zeroed", None, 0, 1, True))
    path = write_lines(tmp_path / "episodes.jsonl", lines)
    points = {(p.group, p.share): p for p in curve([path])}
    assert sorted(points) == [("1-4", 0.0), ("1-4", 0.5), ("1-4", 1.0),
                              ("5-9", 0.0), ("5-9", 0.5), ("5-9", 1.0)]
    half = points[("5-9", 1.0)]
    assert half.per_model == {"a": 1.0, "b": 0.5}
    assert (half.success, half.half_width) == pytest.approx(mean_interval([1.0, 0.5]))
    assert (half.difference, half.difference_half_width) == pytest.approx(mean_interval([1.0, 0.5]))
    assert points[("1-4", 0.5)].per_model == {"a": 1.0, "b": 0.5}
    assert points[("1-4", 0.5)].difference == pytest.approx(mean([0.5, 0.5]))
    assert points[("1-4", 0.5)].steps_read_bot == pytest.approx(0.5)
    assert points[("1-4", 0.0)].steps_read_bot == 0.0
    assert all(p.models == 2 for p in points.values())
    # another grouping of the same bins
    assert {p.group for p in curve([path], hard_from=2)} == {"1-1", "2-9"}


def mean(values):
    return sum(values) / len(values)


def test_reference_levels_treat_each_series_as_a_model(tmp_path):
    lines = [line("bc_s1", "none", None, 0, 1, True), line("bc_s1", "none", None, 1, 6, False),
             line("bc_s2", "none", None, 0, 1, False), line("bc_s2", "none", None, 1, 6, False),
             line("bc_s2", "oracle", 1.0, 0, 1, True)]  # not the reference's own play
    levels = reference_levels([write_lines(tmp_path / "bc.jsonl", lines)])
    assert [(r.group, r.models, r.success) for r in levels] == [("1-4", 2, 0.5), ("5-9", 2, 0.0)]


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        curve([tmp_path / "missing.jsonl"])
    own_only = write_lines(tmp_path / "own.jsonl", [line("a", "none", None, 0, 1, True)])
    with pytest.raises(UserError, match="no oracle series"):
        curve([own_only])
    old = dict(line("a", "none", None, 0, 1, True))
    del old["thought_ablation"], old["model_name"]
    with pytest.raises(UserError, match="older tc-evaluate-levels"):
        curve([write_lines(tmp_path / "old.jsonl", [old])])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"model": "a"}\n')
    with pytest.raises(UserError, match="broken.jsonl:1"):
        curve([broken])
    with pytest.raises(UserError, match="is a directory"):
        oracle_curve.main([str(own_only), "--out", str(tmp_path)])
    with pytest.raises(UserError, match="--hard-from"):
        oracle_curve.main([str(own_only), "--hard-from", "12"])


def test_end_to_end_after_evaluate_levels(tmp_path, capsys):
    """tc-evaluate-levels with --oracle-share, then tc-oracle-curve: a table, a CSV and a
    picture; share 0 is the models' own thoughts."""
    vocab = Vocabulary.build(["go to the red ball explore unseen area to complete goto mission"])
    for seed in (1, 2):
        torch.manual_seed(seed)
        agent = build_agent(ModelConfig(vocab_size=len(vocab), memory_dim=16, image_dim=8,
                                        instr_dim=8, use_thoughts=True))
        save_checkpoint(tmp_path / "models" / f"tc_s{seed}" / "best.pt", agent, vocab)
    levels = tmp_path / "levels.pkl"
    with open(levels, "wb") as handle:
        pickle.dump({"mission": {1: {1: None, 2: None}, 6: {3: None}}}, handle)
    out = tmp_path / "eval"
    evaluate_levels.main(["--env", LEVEL, "--model", "tc_s1", "--model", "tc_s2",
                          "--thought-ablation", "none,oracle", "--oracle-share", "0.5,1",
                          "--testing-levels-path", str(levels), "--storage", str(tmp_path),
                          "--out", str(out), "--argmax"])
    points = oracle_curve.main([str(out / "episodes.jsonl"), "--reference",
                                str(out / "episodes.jsonl"), "--reference-name", "same"])
    printed = capsys.readouterr().out
    assert "minus own thoughts" in printed and "ref." in printed
    assert sorted((p.group, p.share) for p in points) == [
        ("1-4", 0.0), ("1-4", 0.5), ("1-4", 1.0), ("5-9", 0.0), ("5-9", 0.5), ("5-9", 1.0)]
    assert all(p.models == 2 for p in points)
    assert all(p.steps_read_bot > 0 for p in points if p.share == 1.0)
    rows = list(csv.DictReader((out / "oracle_curve.csv").open()))
    assert len(rows) == 6 and rows[0]["group"] == "1-4"
    assert (out / "oracle_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a selection of thought families, in a second run, read against the first run's own
    only = tmp_path / "only_goto"
    result = evaluate_levels.main(["--env", LEVEL, "--model", "tc_s1", "--model", "tc_s2",
                                   "--thought-ablation", "oracle", "--oracle-families", "goto",
                                   "--testing-levels-path", str(levels), "--storage",
                                   str(tmp_path), "--out", str(only), "--argmax"])
    assert {row.model for row in result.rows} == {"tc_s1 (oracle thoughts, families goto)",
                                                  "tc_s2 (oracle thoughts, families goto)"}
    both = oracle_curve.main([str(out / "episodes.jsonl"), str(only / "episodes.jsonl"),
                              "--out", str(tmp_path / "both.png")])
    selected = [p for p in both if p.families == "goto"]
    assert [(p.group, p.share) for p in selected] == [("1-4", 1.0), ("5-9", 1.0)]
    assert all(p.difference is not None and p.models == 2 for p in selected)
    assert "families handed" in capsys.readouterr().out
    assert (tmp_path / "both.png").is_file() and (tmp_path / "both.csv").is_file()


def test_script_shim_runs():
    import subprocess
    import sys
    script = Path(__file__).resolve().parents[1] / "scripts" / "oracle_curve.py"
    completed = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0 and "--reference" in completed.stdout

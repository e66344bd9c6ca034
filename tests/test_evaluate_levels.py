"""scripts/evaluate_levels.py end to end on a tiny level set with untrained checkpoints."""
from __future__ import annotations

import csv
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from babyai.agent.checkpoint import load_agent
from babyai.agent.records import MISMATCH_KINDS, thought_agreement
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.evaluation import ood
from babyai.agent.checkpoint import save_checkpoint
from babyai.common.errors import UserError
from babyai.evaluation.ood import select_seeds
from babyai.evaluation.stats import label_order
from babyai.evaluation.levels import read_level_set
from babyai.agent.model import ModelConfig, build_agent
from babyai.data.vocab import Vocabulary
from babyai.commands import evaluate_levels

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "evaluate_levels.py"
LEVEL = "BabyAI-GoToRedBallNoDists-v0"  # a one-room level with a 64-step limit


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    """Untrained TC and BC checkpoints under storage/models/{tc,bc}/best.pt."""
    root = tmp_path_factory.mktemp("storage")
    vocab = Vocabulary.build(["go to the red ball explore unseen area to complete goto mission"])
    for name, use_thoughts in (("tc", True), ("bc", False)):
        torch.manual_seed(0)
        agent = build_agent(ModelConfig(vocab_size=len(vocab), memory_dim=16, image_dim=8,
                                        instr_dim=8, use_thoughts=use_thoughts))
        save_checkpoint(root / "models" / name / "best.pt", agent, vocab)
    return root


def hand_written_levels(path: Path) -> Path:
    """The original structure, with values that are not ours (never read) and shared seeds."""
    levels = {"demo": {"425+": {7: "whatever"}, 25: {1: None, 2: (3, "x")}, 75: {3: {}}},
              "mission": {1: {1: 0.5, 4: "a"}, 9: {5: [1, 2]}}}
    with open(path, "wb") as handle:
        pickle.dump(levels, handle)
    return path


def test_hand_written_pickle_round_trip(tmp_path):
    path = hand_written_levels(tmp_path / "levels.pkl")
    levels = read_level_set(path)
    bins = select_seeds(levels, cap=None)
    assert list(bins) == [("demo", 25), ("demo", 75), ("demo", "425+"), ("mission", 1),
                          ("mission", 9)]
    assert bins[("demo", 25)] == [1, 2] and bins[("mission", 9)] == [5]
    assert select_seeds(levels, cap=1)[("demo", 25)] == [1]
    assert sorted([375, "425+", 25, 125], key=label_order) == [25, 125, 375, "425+"]


def test_end_to_end_tc_and_bc(storage, tmp_path, capsys):
    levels = hand_written_levels(tmp_path / "levels.pkl")
    out = tmp_path / "report"
    args = ["--env", LEVEL, "--model", "tc", "--model", "bc", "--testing-levels-path",
            str(levels), "--storage", str(storage), "--out", str(out), "--argmax",
            "--episodes-per-bin", "2"]
    result = evaluate_levels.main(args)
    printed = capsys.readouterr().out
    assert "success by mission type" in printed and "425+" in printed

    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:7] == ["model", "diff_type", "diff", "success_rate", "ci_low",
                                 "ci_high", "episodes"]
    assert [(r["model"], r["diff_type"], r["diff"], r["episodes"]) for r in rows[:5]] == [
        ("tc", "demo", "25", "2"), ("tc", "demo", "75", "1"), ("tc", "demo", "425+", "1"),
        ("tc", "mission", "1", "2"), ("tc", "mission", "9", "1")]
    assert len(rows) == 10 and {r["model"] for r in rows} == {"tc", "bc"}
    for row in rows:
        assert 0 <= float(row["ci_low"]) <= float(row["success_rate"]) <= float(row["ci_high"]) <= 1
    assert all(r["declaration_score"] == "" for r in rows if r["model"] == "bc")

    lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    # seeds 1,2,3,7,4,5 (seed 1 is in two bins, played once) for two models
    assert len(lines) == 12
    seed_one = next(line for line in lines if line["model"] == "tc" and line["seed"] == 1)
    assert seed_one["bins"] == [["demo", 25], ["mission", 1]]
    assert len(seed_one["thoughts"]) == seed_one["length"] > 0
    assert (out / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "mission_types.csv").is_file()
    # the records match a direct greedy run of the same checkpoint
    loaded = load_agent("tc", storage)
    direct = run_episodes(loaded.agent, loaded.vocab, LEVEL, [1], RolloutOptions(argmax=True))[0]
    assert direct.actions == result.records["tc"][1].actions


def test_resumes_from_finished_chunks(storage, tmp_path, monkeypatch):
    levels = hand_written_levels(tmp_path / "levels.pkl")
    args = ["--env", LEVEL, "--model", "bc", "--testing-levels-path", str(levels),
            "--storage", str(storage), "--out", str(tmp_path / "r"), "--episodes-per-bin", "1"]
    first = evaluate_levels.main(args)

    def must_not_run(*_, **__):
        raise AssertionError("a finished chunk was recomputed")

    monkeypatch.setattr(ood, "_run_job", must_not_run)
    second = evaluate_levels.main(args)
    assert [r.success_rate for r in first.rows] == [r.success_rate for r in second.rows]


@pytest.mark.parametrize("content", [None, b"not a pickle", pickle.dumps({"demo": [1, 2]}),
                                     pickle.dumps({"bins": {}})])
def test_bad_level_files_are_user_errors(storage, tmp_path, content):
    path = tmp_path / "levels.pkl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError):
        evaluate_levels.main(["--env", LEVEL, "--model", "bc", "--testing-levels-path",
                            str(path), "--storage", str(storage), "--out", str(tmp_path / "o")])


def test_missing_model_and_bc_oracle(storage, tmp_path):
    levels = hand_written_levels(tmp_path / "levels.pkl")
    with pytest.raises(UserError):
        evaluate_levels.main(["--env", LEVEL, "--model", "nope", "--testing-levels-path",
                            str(levels), "--storage", str(storage)])
    result = evaluate_levels.main(["--env", LEVEL, "--model", "bc", "--model", "tc",
                                 "--oracle-thoughts", "--testing-levels-path", str(levels),
                                 "--storage", str(storage), "--out", str(tmp_path / "o"),
                                 "--episodes-per-bin", "1", "--argmax"])
    assert {row.model for row in result.rows} == {"bc", "tc", "tc (oracle thoughts)"}
    oracle = result.records["tc (oracle thoughts)"][1]
    assert oracle.thoughts[: len(oracle.bot_thoughts)] == oracle.bot_thoughts
    ablated = evaluate_levels.main(["--env", LEVEL, "--model", "bc", "--model", "tc",
                                    "--thought-ablation", "none,zeroed,shuffled",
                                    "--testing-levels-path", str(levels), "--storage",
                                    str(storage), "--out", str(tmp_path / "a"),
                                    "--episodes-per-bin", "1", "--argmax"])
    assert {row.model for row in ablated.rows} == {"bc", "tc", "tc (zeroed thoughts)",
                                                   "tc (shuffled thoughts)"}
    assert all(row.thought_match is None for row in ablated.rows)  # not asked for


def test_thought_agreement_per_bin(storage, tmp_path, capsys):
    """Per bin, the share of the TC model's steps whose thought is the bot's: the same count
    as tc-evaluate's over that bin's episodes; BC rows have none."""
    levels = hand_written_levels(tmp_path / "levels.pkl")
    result = evaluate_levels.main(["--env", LEVEL, "--model", "tc", "--model", "bc",
                                   "--thought-agreement", "--oracle-thoughts",
                                   "--testing-levels-path", str(levels),
                                   "--storage", str(storage), "--out", str(tmp_path / "o"),
                                   "--episodes-per-bin", "2", "--argmax"])
    assert "exact|same family" in capsys.readouterr().out
    bins = select_seeds(read_level_set(levels), cap=2)
    for row in result.rows:
        if row.model != "tc":  # BC thinks nothing; under the bot's thoughts it is the bot
            assert row.thought_match is None and row.intention_match is None
            continue
        group = [result.records["tc"][seed] for seed in bins[(row.diff_type, label_key(row))]]
        expected = thought_agreement(group)
        assert expected.steps > 0
        assert row.thought_match == pytest.approx(expected.value)
        assert row.intention_match == pytest.approx(expected.intention_value)
    played = result.records["tc"][1]
    assert len(played.bot_thoughts) > 0
    # split by the family of the bot's thought: the steps of each bin add up, and the
    # per-family shares recombine into the bin's shares
    families = list(csv.DictReader(result.outputs["thought_families"].open()))
    assert {f["model"] for f in families} == {"tc"}
    for row in (r for r in result.rows if r.model == "tc"):
        parts = [f for f in families if (f["diff_type"], f["diff"]) == (row.diff_type, row.diff)]
        steps = sum(int(f["steps"]) for f in parts)
        group = [result.records["tc"][seed] for seed in bins[(row.diff_type, label_key(row))]]
        assert steps == thought_agreement(group).steps
        matched = sum(float(f["thought_match"]) * int(f["steps"]) for f in parts)
        assert matched / steps == pytest.approx(row.thought_match)
    # the error kinds of each bin: shares that add up to 1, the match share being the bin's
    errors = {(e["diff_type"], e["diff"]): e
              for e in csv.DictReader(result.outputs["thought_errors"].open())}
    for row in (r for r in result.rows if r.model == "tc"):
        error = errors[(row.diff_type, row.diff)]
        shares = [float(error[kind]) for kind in MISMATCH_KINDS]
        assert sum(shares) == pytest.approx(1.0)
        assert float(error["match"]) == pytest.approx(row.thought_match)


def label_key(row):
    return row.diff if row.diff.endswith("+") else int(row.diff)


def test_bad_ablation_is_a_clear_error(storage, tmp_path):
    levels = hand_written_levels(tmp_path / "levels.pkl")
    with pytest.raises(UserError, match="comma-separated"):
        evaluate_levels.main(["--env", LEVEL, "--model", "tc", "--thought-ablation", "scrambled",
                              "--testing-levels-path", str(levels), "--storage", str(storage)])


@pytest.mark.slow
def test_workers_give_the_same_sampled_results_as_one_process(storage, tmp_path):
    """Run as a real process (spawned workers); per-episode sampling streams make the
    numbers independent of how seeds are split among workers."""
    levels = hand_written_levels(tmp_path / "levels.pkl")
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), "--env", LEVEL, "--model", "tc", "--testing-levels-path",
             str(levels), "--storage", str(storage), "--out", str(out), "--workers",
             str(workers), "--max-batch", "2"],
            capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr
        outputs.append((out / "results.csv").read_text())
    assert outputs[0] == outputs[1]
    bad = subprocess.run([sys.executable, str(SCRIPT), "--env", LEVEL, "--model", "tc",
                          "--testing-levels-path", str(tmp_path / "missing.pkl"),
                          "--storage", str(storage)], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_evaluate_one_tc_model_prints_its_thought_scores(storage, capsys):
    """One TC model, one condition: the table with declaration and thought agreement is
    still printed (a user evaluating one agent wants its thought quality too)."""
    from babyai.commands import evaluate
    evaluate.main(["--env", LEVEL, "--model", "tc", "--episodes", "2", "--storage", str(storage)])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model (condition)"))
    assert header.split()[-4:] == ["declared", "agrees", "intends", "follows"]
    evaluate.main(["--env", LEVEL, "--model", "bc", "--episodes", "2", "--storage", str(storage)])
    assert "model (condition)" not in capsys.readouterr().out  # BC has no thought scores


def test_oracle_share_series(storage, tmp_path):
    """One oracle series per --oracle-share; 0% plays as own thoughts; the share of steps
    that read the bot's thought is in results.csv."""
    levels = hand_written_levels(tmp_path / "levels.pkl")
    result = evaluate_levels.main(["--env", LEVEL, "--model", "tc", "--model", "bc",
                                   "--thought-ablation", "none,oracle", "--oracle-share", "0,1",
                                   "--testing-levels-path", str(levels), "--storage",
                                   str(storage), "--out", str(tmp_path / "o"),
                                   "--episodes-per-bin", "1", "--argmax"])
    none_label, full_label = "tc (oracle thoughts, 0% of subgoals)", "tc (oracle thoughts)"
    assert {row.model for row in result.rows} == {"tc", "bc", none_label, full_label}
    for seed, record in result.records["tc"].items():
        assert result.records[none_label][seed].actions == record.actions
    by_series = {}
    for row in result.rows:
        by_series.setdefault(row.model, []).append(row.oracle_step_share)
    assert set(by_series["tc"]) == set(by_series["bc"]) == {None}
    assert set(by_series[none_label]) == {0.0}
    assert all(share > 0 for share in by_series[full_label])
    saved = list(csv.DictReader(result.outputs["csv"].open()))
    assert "oracle_step_share" in saved[0]


@pytest.mark.parametrize("flags, message", [
    (["--oracle-share", "0.5"], "add oracle to --thought-ablation"),
    (["--thought-ablation", "oracle", "--oracle-share", "0.5,2"], "numbers in \\[0, 1\\]"),
    (["--oracle-families", "goto"], "add oracle to --thought-ablation"),
    (["--thought-ablation", "oracle", "--oracle-families", "teleport"], "comma-separated")])
def test_bad_oracle_share_is_a_clear_error(storage, tmp_path, flags, message):
    levels = hand_written_levels(tmp_path / "levels.pkl")
    out = tmp_path / "never"
    with pytest.raises(UserError, match=message):
        evaluate_levels.main(["--env", LEVEL, "--model", "tc", "--testing-levels-path",
                              str(levels), "--storage", str(storage), "--out", str(out), *flags])
    assert not out.exists()

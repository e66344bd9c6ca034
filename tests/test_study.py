"""The study command at a tiny scale: runs, CSV rows, figure, table, resume; and its maths."""
from __future__ import annotations

import csv
import math
import pickle
from statistics import stdev

import pytest

from babyai.commands import evaluate, study
from babyai.common.errors import UserError
from babyai.common.seeds import TRAINER_VALIDATION_START
from babyai.demos.files import read_demo_file
from babyai.evaluation.stats import mean_interval
from babyai.pipeline.study import (StudyConfig, evaluate_runs, ood_groups,
                                   paired_differences, plan_runs, summarize_agents)

TINY = ["--name", "tiny", "--env", "BabyAI-GoToLocal-v0", "--agents", "tc,bc", "--seeds", "1",
        "--episodes", "12", "--valid-episodes", "3", "--frames", "300", "--eval-every", "150",
        "--eval-episodes", "3", "--memory-dim", "16", "--instr-dim", "8", "--image-dim", "8",
        "--batch-size", "4", "--workers", "2"]


def test_tiny_study_end_to_end_and_resume(tmp_path):
    levels = tmp_path / "ood.pkl"  # the original's structure: kind -> bin -> seed -> info
    with open(levels, "wb") as handle:
        pickle.dump({"demo": {25: {901: None}},
                     "mission": {1: {901: None, 902: None}, 6: {903: None}}}, handle)
    args = TINY + ["--final-episodes", "5", "--ood-levels", str(levels),
                   "--storage", str(tmp_path)]
    result = study.main(args)
    report = tmp_path / "reports" / "tiny"
    with open(report / "study.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # one row per agent, seed and evaluation point (2 epochs of ~150 frames)
    assert sorted((r["agent"], r["epoch"]) for r in rows) == [("bc", "1"), ("bc", "2"),
                                                               ("tc", "1"), ("tc", "2")]
    assert all(0 <= float(r["success_rate"]) <= 1 and r["episodes"] == "3" for r in rows)
    assert {r["agent"] for r in result.final} == {"tc", "bc"}
    tc_final = next(r for r in result.final if r["agent"] == "tc")
    assert 0 <= tc_final["oracle_success_rate"] <= 1  # the oracle bound of the TC run
    assert (report / "study.png").stat().st_size > 1000
    assert (report / "ood.png").stat().st_size > 1000 and "ood.png" in result.outputs["report"].read_text()
    assert "| tc | 1 |" in (report / "README.md").read_text()
    # The larger final evaluation plays the levels `tc-evaluate` plays from the same seed.
    for row in result.final:
        summary = evaluate.main(["--env", "BabyAI-GoToLocal-v0", "--model", str(
            tmp_path / "models" / f"tiny_{row['agent']}_s1" / "last.pt"), "--episodes", "5",
            "--first-seed", str(TRAINER_VALIDATION_START), "--no-thought-agreement"])
        assert row["final_eval_success_rate"] == next(iter(summary.values()))["success_rate"]
    with open(report / "differences.csv", newline="") as handle:
        paired = list(csv.DictReader(handle))
    assert [(r["comparison"], r["measure"], r["seeds"]) for r in paired] == [
        ("tc - bc", "final", "1"), ("tc - bc", "mean of last 3", "1"),
        ("tc - bc", "5 levels", "1"), ("tc - bc", "OOD mission bins 1", "1"),
        ("tc - bc", "OOD mission bins 6", "1")]
    # Every run played every bin of the level set; TC's thoughts were compared with the bot's.
    with open(report / "ood.csv", newline="") as handle:
        ood = list(csv.DictReader(handle))
    assert sorted((r["agent"], r["diff_type"], r["diff"], r["episodes"]) for r in ood) == [
        ("bc", "demo", "25", "1"), ("bc", "mission", "1", "2"), ("bc", "mission", "6", "1"),
        ("tc", "demo", "25", "1"), ("tc", "mission", "1", "2"), ("tc", "mission", "6", "1")]
    assert all((r["thought_match"] != "") == (r["agent"] == "tc") for r in ood)
    # TC also played the set with the bot's thoughts (the bound per bin); BC has no thoughts.
    assert all((r["oracle_success_rate"] != "") == (r["agent"] == "tc") for r in ood)
    bound = [float(r["oracle_success_rate"]) for r in ood if r["agent"] == "tc"
             and r["diff"] == "6"]
    assert tc_final["ood_hard_oracle_success_rate"] == pytest.approx(bound[0])
    assert next(r for r in result.final if r["agent"] == "bc")["ood_hard_oracle_success_rate"] == ""
    easy = [float(r["success_rate"]) for r in ood if r["agent"] == "tc" and r["diff"] == "1"]
    assert tc_final["ood_easy_success_rate"] == pytest.approx(easy[0])
    bc_final = next(r for r in result.final if r["agent"] == "bc")
    assert float(paired[0]["difference"]) == pytest.approx(
        tc_final["success_rate"] - bc_final["success_rate"])
    assert float(paired[2]["difference"]) == pytest.approx(
        tc_final["final_eval_success_rate"] - bc_final["final_eval_success_rate"])
    text = (report / "README.md").read_text()
    assert "5-level success" in text and "OOD bins 6" in text and "| bin 1 | bin 6 |" in text
    # Rerunning resumes: finished runs are not retrained, the outputs are identical.
    weights = (tmp_path / "models" / "tiny_tc_s1" / "last.pt").stat().st_mtime_ns
    again = study.main(args)
    assert (tmp_path / "models" / "tiny_tc_s1" / "last.pt").stat().st_mtime_ns == weights
    assert again.final == result.final


def test_one_agent_study_has_no_pairs(tmp_path):
    args = TINY + ["--agents", "bc", "--storage", str(tmp_path)]
    result = study.main(args)
    report = tmp_path / "reports" / "tiny"
    assert result.differences == []
    assert (report / "differences.csv").read_text().startswith("comparison,measure,seeds")
    assert "Paired by seed" not in (report / "README.md").read_text()


def test_evaluations_in_parallel_match_one_process(tmp_path):
    args = TINY + ["--agents", "bc", "--seeds", "2", "--final-episodes", "4",
                   "--storage", str(tmp_path)]
    parallel = study.main(args).final  # two runs: evaluated by two processes
    for cache in (tmp_path / "models").glob("*/final_eval.json"):
        cache.unlink()
    assert study.main(args + ["--workers", "1"]).final == parallel


def test_a_failed_evaluation_stops_the_study_with_its_error(tmp_path):
    config = StudyConfig(agents=("bc",), seeds=2, storage=str(tmp_path), workers=2)
    runs = plan_runs(config, 10.0, tmp_path)
    with pytest.raises(UserError, match=r"study_bc_s[12] has no evaluation"):
        evaluate_runs(runs, [[], []], tmp_path, config, None, tmp_path / "ood")


def test_plan_runs_share_demos_levels_and_frames(tmp_path):
    config = StudyConfig(agents=("tc", "bc", "tc_nothought"), seeds=2, frames=400_000,
                         eval_every=50_000, tf_fraction=0.25, tf_floor=0.5,
                         history_thoughts="own")
    runs = plan_runs(config, mean_length=80.0, root=tmp_path)
    assert [(r.agent, r.seed) for r in runs] == [("tc", 1), ("tc", 2), ("bc", 1), ("bc", 2),
                                                 ("tc_nothought", 1), ("tc_nothought", 2)]
    for run in runs:
        flags = dict(zip(run.args[::2], run.args[1::2]))
        assert flags["--epochs"] == "8" and flags["--epoch-length"] == "625"  # 50k / 80
        assert flags["--demos"] == "study" and flags["--val-episodes"] == "100"
    tc, nothought = runs[0].args, runs[4].args
    assert tc[tc.index("--sg-coef") + 1] == "2.0" and tc[tc.index("--stop-tf") + 1] == "2"
    assert tc[tc.index("--tf-floor") + 1] == "0.5"
    assert tc[tc.index("--history-thoughts") + 1] == "own"
    assert nothought[nothought.index("--sg-coef") + 1] == "0.0"
    assert "--no-teacher-forcing" in nothought and "--stop-tf" not in nothought
    assert "--sg-coef" not in runs[2].args and runs[2].module.endswith("train_bc")
    assert all("--thought-decoder" not in run.args for run in runs)  # the default plans as before
    config = StudyConfig(agents=("tc", "bc", "tc_nothought"), seeds=1, thought_decoder="mission")
    flags = [run.args for run in plan_runs(config, mean_length=80.0, root=tmp_path)]
    assert [args[args.index("--thought-decoder") + 1] for args in flags if "--thought-decoder" in args] \
        == ["mission", "mission"] and "--thought-decoder" not in flags[1]  # not for BC
    assert all("--thought-weights" not in args for args in flags)
    assert all("--counterfactual-coef" not in args for args in flags)
    config = StudyConfig(agents=("tc", "bc", "tc_nothought"), seeds=1, thought_weights="balanced",
                         counterfactual_coef=0.5)
    flags = [run.args for run in plan_runs(config, mean_length=80.0, root=tmp_path)]
    assert flags[0][flags[0].index("--thought-weights") + 1] == "balanced"
    assert flags[0][flags[0].index("--counterfactual-coef") + 1] == "0.5"
    for args in flags[1:]:  # BC has no thoughts; tc_nothought no thought loss, no teacher forcing
        assert "--thought-weights" not in args and "--counterfactual-coef" not in args


def test_summary_across_seeds():
    final = [{"agent": "tc", "seed": s, "frames": 10, "success_rate": v, "oracle_success_rate": o}
             for s, v, o in ((1, 0.5, 0.7), (2, 0.6, 0.8), (3, 0.7, 0.9))]
    final.append({"agent": "bc", "seed": 1, "frames": 10, "success_rate": 0.4,
                  "oracle_success_rate": ""})
    table = {entry["agent"]: entry for entry in summarize_agents(final)}
    assert table["tc"]["success_rate"] == pytest.approx(0.6)
    # t(0.975, 2 dof) * sd / sqrt(3) with sd = 0.1
    assert table["tc"]["success_rate_half_width"] == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert table["tc"]["oracle_success_rate"] == pytest.approx(0.8)
    assert "oracle_success_rate" not in table["bc"]
    assert math.isnan(mean_interval([0.3])[1])


def test_paired_differences_by_seed():
    def curve(agent, seed, rates):
        return [{"agent": agent, "seed": str(seed), "frames": str(frames), "success_rate": str(r)}
                for frames, r in zip((300, 200, 100, 400), rates)]  # unordered, as strings
    # frames 300, 200, 100, 400 -> in order: rates[2], rates[1], rates[0], rates[3]
    curves = (curve("tc", 1, (0.6, 0.5, 0.4, 0.7)) + curve("tc", 2, (0.5, 0.5, 0.5, 0.8))
              + curve("bc", 1, (0.5, 0.5, 0.5, 0.6)) + curve("bc", 2, (0.6, 0.4, 0.4, 0.6))
              + curve("bc", 3, (0.9, 0.9, 0.9, 0.9)))  # no TC seed 3: not paired
    rows = {row["measure"]: row for row in paired_differences(curves, last=3)}
    final, last3 = rows["final"], rows["mean of last 3"]
    assert final["comparison"] == "tc - bc" and final["seeds"] == 2
    # final: 0.7 - 0.6 = 0.1 and 0.8 - 0.6 = 0.2
    assert final["difference"] == pytest.approx(0.15)
    assert final["half_width"] == pytest.approx(12.706 * stdev([0.1, 0.2]) / math.sqrt(2))
    # last 3 (frames 200, 300, 400): tc 0.6, 0.6; bc 0.5333, 0.5333 -> +0.0667 twice
    assert last3["difference"] == pytest.approx(0.2 / 3)
    assert last3["half_width"] == pytest.approx(0.0)
    assert final["per_seed"] == "+0.100 +0.200"
    assert paired_differences(curve("bc", 1, (0.5,) * 4)) == []  # no TC runs: nothing
    final = [{"agent": a, "seed": seed, "final_episodes": 300, "final_eval_success_rate": rate}
             for a, seed, rate in (("tc", 1, 0.7), ("tc", 2, 0.6), ("bc", 1, 0.5), ("bc", 2, ""))]
    larger = paired_differences(curves, final)[-1]  # bc seed 2 has no such evaluation
    assert (larger["measure"], larger["seeds"]) == ("300 levels", 1)
    assert larger["difference"] == pytest.approx(0.2) and math.isnan(larger["half_width"])


def test_ood_groups_pool_the_mission_bins():
    bins = [{"diff_type": "demo", "diff": "25", "episodes": 10, "success_rate": 0.0},
            {"diff_type": "mission", "diff": "2", "episodes": 20, "success_rate": 0.5},
            {"diff_type": "mission", "diff": "4", "episodes": 10, "success_rate": 0.8},
            {"diff_type": "mission", "diff": "5", "episodes": 20, "success_rate": 0.25},
            {"diff_type": "mission", "diff": "9", "episodes": 20, "success_rate": 0.75}]
    groups = ood_groups(bins, hard_from=5)
    assert groups["ood_easy_bins"] == "2-4" and groups["ood_hard_bins"] == "5-9"
    assert groups["ood_easy_success_rate"] == pytest.approx((10 + 8) / 30)  # pooled episodes
    assert groups["ood_hard_success_rate"] == pytest.approx(0.5)
    assert ood_groups(bins[:3], hard_from=5)["ood_hard_success_rate"] == ""
    assert groups["ood_hard_oracle_success_rate"] == ""  # no bin played with the bot's thoughts
    for item, rate in zip(bins[3:], (1.0, 0.5)):
        item["oracle_success_rate"] = rate
    assert ood_groups(bins, hard_from=5)["ood_hard_oracle_success_rate"] == pytest.approx(0.75)


def test_bad_budget_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="eval-every"):
        study.main(["--frames", "100", "--eval-every", "200", "--storage", str(tmp_path)])
    with pytest.raises(UserError, match="comma-separated"):
        study.main(["--agents", "tc,dqn", "--storage", str(tmp_path)])
    with pytest.raises(UserError, match="no effect"):  # a floor under always-on forcing
        study.main(["--tf-fraction", "1", "--tf-floor", "0.5", "--storage", str(tmp_path)])
    with pytest.raises(UserError, match="missing.pkl"):  # before any demos or training
        study.main(TINY + ["--ood-levels", str(tmp_path / "missing.pkl"),
                           "--storage", str(tmp_path)])
    assert not (tmp_path / "demos").exists()


def test_slips_reach_the_study_demos(tmp_path):
    study.main(TINY + ["--agents", "bc", "--slip-rate", "0.3", "--storage", str(tmp_path)])
    for name in ("tiny.pkl", "tiny_valid.pkl"):
        assert read_demo_file(tmp_path / "demos" / name).meta["slip_rate"] == 0.3

"""Comparing two studies seed by seed (tc-compare-studies): the real command on two tiny
studies one setting apart, the pairing against a hand computation, and bad input."""
from __future__ import annotations

import csv
import pickle

import pytest

from babyai.commands import compare_studies, study
from babyai.common.cli import run
from babyai.common.errors import UserError
from babyai.pipeline.compare import StudyRecord, compare, read_study, setting_changes
from babyai.evaluation.stats import mean_interval
from babyai.reports.study_figure import plot_comparison

TINY = ["--env", "BabyAI-GoToLocal-v0", "--agents", "tc", "--seeds", "2", "--episodes", "12",
        "--valid-episodes", "3", "--frames", "300", "--eval-every", "150", "--eval-episodes",
        "3", "--memory-dim", "16", "--instr-dim", "8", "--image-dim", "8", "--batch-size", "4",
        "--workers", "2", "--final-episodes", "4", "--no-oracle"]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_tiny_studies_compared_through_the_command(tmp_path, capsys):
    levels = tmp_path / "ood.pkl"
    with open(levels, "wb") as handle:
        pickle.dump({"mission": {1: {901: None, 902: None}, 6: {903: None}}}, handle)
    common = TINY + ["--ood-levels", str(levels), "--storage", str(tmp_path)]
    study.main(common + ["--name", "small"])
    study.main(common + ["--name", "wide", "--memory-dim", "24"])
    rows = compare_studies.main(["small", "wide", "--storage", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "tc memory_dim: 16 -> 24" in printed and "same demos (content hash)" in printed
    assert "tc seed" not in printed  # seeds, names and paths are not settings
    by_measure = {row["measure"]: row for row in rows}
    assert set(by_measure) >= {"final evaluation", "mean of last 3 evaluations", "4 levels",
                               "OOD bins 1", "OOD bins 6", "OOD bins 1, thought match",
                               "OOD bins 6, thought match", "thought match, last evaluation"}
    # Each difference is taken within a seed, the interval across seeds, from what the two
    # studies wrote.
    small = {int(r["seed"]): r for r in _rows(tmp_path / "reports" / "small" / "final.csv")}
    wide = {int(r["seed"]): r for r in _rows(tmp_path / "reports" / "wide" / "final.csv")}
    values = [float(wide[s]["final_eval_success_rate"]) - float(small[s]["final_eval_success_rate"])
              for s in (1, 2)]
    row = by_measure["4 levels"]
    assert row["seeds"] == 2
    assert (row["difference"], row["half_width"]) == pytest.approx(mean_interval(values))
    # OOD thought match: the group's bins weighted by their episodes (bin 1 alone here).
    ood = {(int(r["seed"]), r["diff"]): float(r["thought_match"])
           for r in _rows(tmp_path / "reports" / "wide" / "ood.csv")}
    assert by_measure["OOD bins 1, thought match"]["second"] == pytest.approx(
        (ood[1, "1"] + ood[2, "1"]) / 2)
    saved = _rows(tmp_path / "reports" / "wide" / "compare_small.csv")
    assert [r["measure"] for r in saved] == [r["measure"] for r in rows]
    assert (tmp_path / "reports" / "wide" / "compare_small.png").stat().st_size > 1000


def _record(name, values, settings=None, demos_hash="abc", demos_settings=None):
    return StudyRecord(name, values, settings or {}, demos_hash, demos_settings or {})


def test_pairs_only_the_seeds_both_studies_have():
    first = _record("a", {"tc": {"final evaluation": {1: 0.50, 2: 0.60, 3: 0.70}}})
    second = _record("b", {"tc": {"final evaluation": {1: 0.55, 2: 0.70, 4: 0.90}},
                           "bc": {"final evaluation": {1: 0.4}}})
    [row] = compare(first, second)
    assert row["seeds"] == 2 and row["per_seed"] == "+0.050 +0.100"
    assert row["first"] == pytest.approx(0.55) and row["second"] == pytest.approx(0.625)
    assert (row["difference"], row["half_width"]) == pytest.approx(mean_interval([0.05, 0.10]))
    with pytest.raises(UserError, match="bc not in both studies"):
        compare(first, second, ["bc"])
    with pytest.raises(UserError, match="share no seed"):
        compare(first, _record("c", {"tc": {"final evaluation": {7: 0.5}}}))


def test_setting_changes_name_the_flags_and_the_demos():
    first = _record("a", {}, {"tc": {"memory_dim": 128, "seed": 1, "model": "a_tc_s1"}}, "x")
    second = _record("b", {}, {"tc": {"memory_dim": 256, "seed": 1, "model": "b_tc_s1"}}, "y")
    assert setting_changes(first, second) == ["tc memory_dim: 128 -> 256",
                                              "different demos (content hash)"]
    # a run made before a training setting existed ran with its default
    older = _record("a", {}, {"tc": {"memory_dim": 128}})
    assert setting_changes(older, _record("b", {}, {"tc": {"memory_dim": 128,
                                                          "thought_decoder": "mission"}}))[0] \
        == "tc thought_decoder: memory -> mission"
    assert setting_changes(older, _record("b", {}, {"tc": {"memory_dim": 128,
                                                          "thought_decoder": "memory"}})) \
        == ["same demos (content hash)"]
    # a setting a demo file records only when it is on (slips) counts as its default
    plain = {"env": "L", "seed": 1, "noise_rate": 0.01, "run_id": "p", "split": "train"}
    slips = {**plain, "slip_rate": 0.2, "run_id": "q"}
    assert setting_changes(_record("a", {}, demos_settings=plain),
                           _record("b", {}, demos_settings=slips)) == [
        "demos slip_rate: 0.0 -> 0.2", "same demos (content hash)"]
    assert setting_changes(_record("a", {}, demos_settings={**plain, "noise_rate": 0.05}),
                           _record("b", {}, demos_settings=plain))[0] == \
        "demos noise_rate: 0.05 -> 0.01"


def test_a_missing_or_foreign_study_is_one_clear_error(tmp_path, capsys):
    assert run(compare_studies.main, ["none", "other", "--storage", str(tmp_path)]) == 2
    assert "final.csv: no such file" in capsys.readouterr().err
    assert run(compare_studies.main, ["none", "other", "--storage", str(tmp_path),
                                      "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert run(compare_studies.main, ["none", "other", "--storage", str(tmp_path),
                                      "--out", str(tmp_path / "missing" / "c.csv")]) == 2
    assert "no such directory" in capsys.readouterr().err
    report = tmp_path / "reports" / "odd"
    report.mkdir(parents=True)
    (report / "final.csv").write_text("agent,seed\ntc,one\n")
    (report / "study.csv").write_text("agent,seed,frames,success_rate\n")
    with pytest.raises(UserError, match="not what tc-study writes"):
        read_study("odd", tmp_path)
    assert not (report / "compare_odd.csv").exists()


def test_the_picture_takes_one_seed_without_an_interval(tmp_path):
    [row] = compare(_record("a", {"tc": {"final evaluation": {1: 0.5}}}),
                    _record("b", {"tc": {"final evaluation": {1: 0.6}}}))
    assert row["half_width"] != row["half_width"]  # nan: one seed has no spread
    assert plot_comparison([row], tmp_path / "one.png").stat().st_size > 1000

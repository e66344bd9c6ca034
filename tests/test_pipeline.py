"""Content-addressed stages and the end-to-end pipeline at a tiny scale."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from babyai.common.errors import UserError
from babyai.pipeline.stages import Stage, StageRunner
from babyai.commands import pipeline

ROOT = Path(__file__).resolve().parent.parent

COPY_SCRIPT = """
import sys, pathlib
src, dst, counter = map(pathlib.Path, sys.argv[1:4])
counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
dst.parent.mkdir(parents=True, exist_ok=True)
(dst.parent / "partial").write_text("x")
dst.write_text(src.read_text().upper())
"""


@pytest.fixture(autouse=True)
def modules_in_tmp_path(tmp_path, monkeypatch):
    """Stages run modules: the test's own ones live in tmp_path."""
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # keep what finds the packages


def _copy_stage(tmp_path: Path) -> Stage:
    (tmp_path / "copy_stage_command.py").write_text(COPY_SCRIPT)
    src, out = tmp_path / "in.txt", tmp_path / "work" / "out.txt"
    return Stage("copy", "copy_stage_command", [str(src), str(out), str(tmp_path / "runs")],
                 inputs=[src], outputs=[out], workdir=out.parent)


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


def test_stage_skips_when_content_unchanged_and_reruns_when_it_changes(tmp_path):
    stage = _copy_stage(tmp_path)
    (tmp_path / "in.txt").write_text("a")
    runner = StageRunner(tmp_path / "stages.json")
    assert runner.run(stage) and _runs(tmp_path) == 1
    assert not StageRunner(tmp_path / "stages.json").run(stage) and _runs(tmp_path) == 1
    (tmp_path / "in.txt").write_text("a")  # rewritten with the same content: still fresh
    assert not StageRunner(tmp_path / "stages.json").run(stage)
    (tmp_path / "in.txt").write_text("b")
    assert StageRunner(tmp_path / "stages.json").run(stage) and _runs(tmp_path) == 2
    assert (tmp_path / "work" / "out.txt").read_text() == "B"
    (tmp_path / "work" / "out.txt").write_text("tampered")  # an output changed: stale
    assert StageRunner(tmp_path / "stages.json").run(stage) and _runs(tmp_path) == 3
    assert StageRunner(tmp_path / "stages.json", force=True).run(stage) and _runs(tmp_path) == 4


def test_killed_stage_keeps_its_work_but_changed_inputs_start_afresh(tmp_path):
    stage = _copy_stage(tmp_path)
    (tmp_path / "in.txt").write_text("a")
    runner = StageRunner(tmp_path / "stages.json")
    # Simulate a kill after the stage started: its record says it started with this key.
    runner.records["copy"] = {"started_key": runner.key(stage)}
    runner.save()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "resume-state").write_text("kept")
    StageRunner(tmp_path / "stages.json").run(stage)
    assert (tmp_path / "work" / "resume-state").exists()
    (tmp_path / "in.txt").write_text("changed")
    StageRunner(tmp_path / "stages.json").run(stage)
    assert not (tmp_path / "work" / "resume-state").exists()


def test_failing_stage_and_missing_input_are_clear_errors(tmp_path):
    (tmp_path / "bad_stage_command.py").write_text("raise SystemExit(3)")
    bad = "bad_stage_command"
    runner = StageRunner(tmp_path / "stages.json")
    with pytest.raises(UserError, match="stage broken failed"):
        runner.run(Stage("broken", bad, []))
    with pytest.raises(UserError, match="input .* is missing"):
        runner.run(Stage("needs", bad, [], inputs=[tmp_path / "nope"]))


@pytest.mark.slow
def test_pipeline_end_to_end_tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["--storage", str(tmp_path), "--name", "tiny", "--env", "BabyAI-GoToLocal-v0",
            "--episodes", "24", "--valid-episodes", "6", "--epochs", "1", "--stop-tf", "0",
            "--val-episodes", "3",
            "--levels-per-bin", "2", "--levels-max-draws", "24", "--eval-episodes", "6",
            "--memory-dim", "32", "--instr-dim", "16", "--image-dim", "16", "--workers", "1"]
    report = pipeline.main(argv)
    report_dir = tmp_path / "reports" / "tiny"
    assert report == report_dir / "README.md"
    text = report.read_text()
    for heading in ("In-distribution success", "Training", "Out-of-distribution success",
                    "What the TC agent thinks", "At paper scale"):
        assert f"## {heading}" in text
    summary = json.loads((report_dir / "indist" / "summary.json").read_text())
    assert set(summary) == {"tiny_tc", "tiny_bc", "untrained", "tiny_tc (oracle thoughts)",
                            "tiny_tc (zeroed thoughts)", "tiny_tc (shuffled thoughts)"}
    assert "thought_agreement" in summary["tiny_tc"]
    assert "tiny_tc (oracle thoughts)" in text
    assert all(entry["episodes"] == 6 for entry in summary.values())
    with open(report_dir / "ood" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["model"] for row in rows} == {"tiny_tc", "tiny_bc"}
    for picture in ("curves.png", "ood/success.png"):
        assert Image.open(report_dir / picture).size[0] > 100
    gif = Image.open(report_dir / "tc_agent.gif")
    assert gif.n_frames >= 2
    for kind in ("tc", "bc"):
        assert (tmp_path / "models" / f"tiny_{kind}" / "best.pt").is_file()

    # A rerun reuses every stage and writes the same report.
    stages = json.loads((report_dir / "stages.json").read_text())
    assert pipeline.main(argv).read_text() == text
    assert json.loads((report_dir / "stages.json").read_text()) == stages

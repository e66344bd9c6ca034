"""One writer per dataset, run directory and level set: a second writer on the same name stops
at once with a clear message, and the first finishes intact."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from babyai.common.cli import run
from babyai.common.locks import writer_lock
from babyai.commands import make_testing_levels, train_tc
from babyai.demos.files import read_demo_file
from synthetic_demos import write_demos

EPISODES = 2000
"""Enough that the first writer holds its lock for seconds (150 took under a second, about
the time the second writer needs to start, so it sometimes found the lock already free)."""
DEMOS = ["--env", "GoToLocal", "--episodes", str(EPISODES), "--valid-episodes", "5",
         "--no-progress", "--save-interval", "500"]


def _start(module: str, argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", f"babyai.commands.{module}", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_until_writing(written: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until `process` has written `written`, which it only does while holding its writer
    lock (it must still be running then). Probing the lock itself would briefly take it,
    and a writer starting at that instant would rightly stop as the second writer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if written.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{written} was never written")


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.slow
def test_second_generation_on_one_name_stops_and_the_first_finishes_intact(tmp_path):
    storage = ["--storage", str(tmp_path)]
    alone = subprocess.run([sys.executable, "-m", "babyai.commands.make_agent_demos", *DEMOS,
                            "--demos", "alone", *storage], capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    target = tmp_path / "demos" / "shared.pkl"
    first = _start("make_agent_demos", [*DEMOS, "--demos", "shared", *storage])
    _wait_until_writing(target, first)  # its first partial save
    second = subprocess.run([sys.executable, "-m", "babyai.commands.make_agent_demos", *DEMOS,
                             "--seed", "7", "--demos", "shared", "--overwrite", *storage],
                            capture_output=True, text=True)
    assert second.returncode == 2
    assert "another process is writing the dataset" in _one_line(second.stderr)
    assert first.wait(timeout=300) == 0, first.communicate()
    for name in ("shared.pkl", "shared_valid.pkl"):
        assert (tmp_path / "demos" / name).read_bytes() == \
            (tmp_path / "demos" / name.replace("shared", "alone")).read_bytes()
    assert len(read_demo_file(target).episodes) == EPISODES


@pytest.mark.slow
def test_second_training_on_one_model_stops_and_the_first_finishes_intact(tmp_path):
    write_demos(tmp_path, "synth", count=24)
    argv = ["--demos", "synth", "--model", "shared", "--env", "BabyAI-GoToRedBall-v0",
            "--epochs", "3", "--val-episodes", "0", "--memory-dim", "16", "--instr-dim", "8",
            "--image-dim", "8", "--batch-size", "4", "--recurrence", "4", "--threads", "1",
            "--storage", str(tmp_path)]
    first = _start("train_tc", argv)
    run_dir = tmp_path / "models" / "shared"
    _wait_until_writing(run_dir / "config.json", first)
    assert run(train_tc.main, [*argv, "--lr", "0.5"]) == 2
    assert first.wait(timeout=300) == 0, first.communicate()
    rows = (run_dir / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]
    assert "lr" in rows[0] and all("0.5" not in row.split(",")[3] for row in rows[1:])


def test_second_level_set_builder_stops(tmp_path, capsys):
    out = tmp_path / "levels" / "shared.pkl"
    with writer_lock(out, "level set"):
        assert run(make_testing_levels.main, ["--env", "GoToLocal", "--out", str(out),
                                              "--per-bin", "1", "--max-draws", "2",
                                              "--quiet"]) == 2
    assert "another process is writing the level set" in _one_line(capsys.readouterr().err)
    assert not out.exists()

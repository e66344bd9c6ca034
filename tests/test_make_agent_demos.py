"""scripts/make_agent_demos.py end to end: flags, determinism across workers, bad input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from babyai.common.cli import run
from babyai.demos.files import load_demos, read_demo_file
from babyai.common.seeds import VALID_DEMO_OFFSET
from babyai.env.thoughts import UNKNOWN_FAMILY, thought_family
from babyai.commands import make_agent_demos

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_agent_demos.py"

SMALL = ["--env", "BabyAI-GoToLocal-v0", "--episodes", "6", "--valid-episodes", "3",
         "--noise-rate", "0.05", "--log-interval", "0", "--no-progress"]


def test_writes_train_and_valid_files_with_disjoint_seeds(tmp_path, capsys):
    make_agent_demos.main([*SMALL, "--storage", str(tmp_path), "--demos", "go"])
    out = capsys.readouterr().out
    assert "6 episodes, length" in out and "bytes/episode" in out and "goto" in out
    train = read_demo_file(tmp_path / "demos" / "go.pkl")
    valid = read_demo_file(tmp_path / "demos" / "go_valid.pkl")
    assert len(train.episodes) == 6 and len(valid.episodes) == 3
    assert train.meta["complete"] and valid.meta["split"] == "valid"
    train_seeds = {e.seed for e in train.episodes}
    valid_seeds = {e.seed for e in valid.episodes}
    assert not train_seeds & valid_seeds
    assert min(valid_seeds) >= 1 + VALID_DEMO_OFFSET
    for episode in train.episodes:
        assert all(thought_family(t) != UNKNOWN_FAMILY for t in episode.thoughts)
    assert len(load_demos(tmp_path / "demos" / "go.pkl")) == 6


@pytest.mark.slow
def test_same_bytes_whatever_the_number_of_workers(tmp_path):
    args = ["--env", "BabyAI-BossLevel-v0", "--episodes", "6", "--valid-episodes", "2",
            "--noise-rate", "0.05", "--no-progress", "--log-interval", "0"]
    make_agent_demos.main([*args, "--storage", str(tmp_path / "a"), "--demos", "d"])
    make_agent_demos.main([*args, "--storage", str(tmp_path / "b"), "--demos", "d",
                           "--workers", "2", "--save-interval", "2"])
    make_agent_demos.main([*args, "--storage", str(tmp_path / "c"), "--demos", "d", "--jobs", "3"])
    for name in ("d.pkl", "d_valid.pkl"):
        reference = (tmp_path / "a" / "demos" / name).read_bytes()
        assert (tmp_path / "b" / "demos" / name).read_bytes() == reference
        assert (tmp_path / "c" / "demos" / name).read_bytes() == reference


def test_print_shows_thought_segments(tmp_path, capsys):
    make_agent_demos.main([*SMALL, "--valid-episodes", "0", "--episodes", "2", "--print",
                           "--storage", str(tmp_path)])
    out = capsys.readouterr().out
    assert 'Mission "go to' in out
    assert 't=0-' in out and 'Thought "' in out and "Action [" in out
    assert (tmp_path / "demos" / "BabyAI-GoToLocal-v0_agent.pkl").exists()


def test_shards_and_merge_from_the_command_line(tmp_path):
    base = [*SMALL, "--storage", str(tmp_path), "--demos", "s", "--num-shards", "2"]
    for shard in ("0", "1"):
        make_agent_demos.main([*base, "--shard", shard])
    assert len(load_demos(tmp_path / "demos" / "s.shards")) == 6  # shard directories load too
    make_agent_demos.main([*base, "--merge"])
    assert len(read_demo_file(tmp_path / "demos" / "s.pkl").episodes) == 6
    assert len(read_demo_file(tmp_path / "demos" / "s_valid.pkl").episodes) == 3


def test_rerun_resumes_and_resume_needs_a_file(tmp_path, capsys):
    args = [*SMALL, "--storage", str(tmp_path), "--demos", "r"]
    make_agent_demos.main(args)
    before = (tmp_path / "demos" / "r.pkl").read_bytes()
    make_agent_demos.main([*args, "--resume"])
    assert "0 generated" in capsys.readouterr().out
    assert (tmp_path / "demos" / "r.pkl").read_bytes() == before
    assert run(make_agent_demos.main, [*SMALL, "--storage", str(tmp_path), "--demos", "new",
                                       "--resume"]) == 2


@pytest.mark.parametrize("bad, message", [
    (["--env", "BabyAI-NoSuchLevel-v0"], "unknown level"),
    (["--episodes", "0"], "--episodes"),
    (["--episodes", "-3"], "--episodes"),
    (["--valid-episodes", "-1"], "--valid-episodes"),
    (["--noise-rate", "1.5"], "--noise-rate"),
    (["--noise-rate", "-0.1"], "--noise-rate"),
    (["--slip-rate", "1.5"], "--slip-rate"),
    (["--slip-rate", "0.2"], "other settings"),  # slips change what the file holds
    (["--shard", "2", "--num-shards", "2"], "--shard"),
    (["--seed", "3"], "other settings"),  # would overwrite a file made with other settings
])
def test_bad_input_is_one_line_and_exit_2_and_nothing_overwritten(tmp_path, capsys, bad, message):
    args = [*SMALL, "--storage", str(tmp_path), "--demos", "keep"]
    make_agent_demos.main(args)
    before = (tmp_path / "demos" / "keep.pkl").read_bytes()
    capsys.readouterr()
    assert run(make_agent_demos.main, [*args, *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert (tmp_path / "demos" / "keep.pkl").read_bytes() == before


def test_unwritable_path_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert run(make_agent_demos.main, [*SMALL, "--demos", str(blocker / "x.pkl")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.slow
def test_subprocess_end_to_end(tmp_path):
    env = {**os.environ, "TC_STORAGE": str(tmp_path)}
    result = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--demos", "e2e"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Sampling rejected" not in result.stdout + result.stderr
    assert (tmp_path / "demos" / "e2e_valid.pkl").exists()
    bad = subprocess.run([sys.executable, str(SCRIPT), "--noise-rate", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1

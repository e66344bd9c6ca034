"""The careless/hostile-user matrix: every case stops with exit code 2 and one line on
stderr, no traceback, and leaves every file that existed before byte-identical (and no new
file but lock files)."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import blosc
import numpy as np
import pytest
import torch

from babyai.agent.checkpoint import save_checkpoint
from babyai.agent.model import ModelConfig, build_agent
from babyai.common.cli import run
from babyai.commands import (evaluate, evaluate_levels, evaluate_safety, make_agent_demos,
                             make_testing_levels, train_tc, visualize)
from babyai.data.vocab import Vocabulary
from babyai.demos.files import load_demos, save_demos
from babyai.evaluation.level_files import write_level_set
from synthetic_demos import MISSIONS, THOUGHTS, make_episode, write_demos

ENV = "BabyAI-GoToRedBall-v0"
TRAIN = ["--env", ENV, "--epochs", "2", "--val-episodes", "0", "--memory-dim", "16",
         "--instr-dim", "8", "--image-dim", "8", "--batch-size", "4", "--recurrence", "4"]


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _record(seed: int = 0, **changes) -> tuple:
    episode = make_episode(seed)
    fields = {"mission": episode.mission, "images": blosc.pack_array(episode.images),
              "directions": episode.directions.tolist(), "actions": episode.actions.tolist(),
              "thoughts": list(episode.thoughts), "seed": seed}
    fields.update(changes)
    return tuple(fields.values())


def _bad_demos(root: Path, content) -> list[str]:
    """`demos/bad.pkl` holding `content` (a good `_valid` beside it); train on it."""
    (root / "demos" / "bad.pkl").write_bytes(pickle.dumps(content))
    shutil.copy(root / "demos" / "synth_valid.pkl", root / "demos" / "bad_valid.pkl")
    return ["train", "--demos", "bad", *TRAIN]


def _episode_case(**changes):
    return lambda root: _bad_demos(root, [_record(0), _record(1, **changes)])


def _images(length: int, value: int | None = None, extra: int = 0) -> bytes:
    images = make_episode(1).images
    if extra:
        images = np.concatenate([images, images[:extra]])
    if value is not None:
        images = images.copy()
        images[0, 0, 0, 0] = value
    return blosc.pack_array(images)


def _rules(root: Path, rule: dict) -> list[str]:
    (root / "rules.json").write_text(json.dumps([{"name": "r", "thought": "x", **rule}]))
    return ["safety", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny", "--episodes", "2",
            "--rules", str(root / "rules.json")]


def _checkpoint(root: Path, **changes) -> list[str]:
    payload = torch.load(root / "models" / "tiny" / "best.pt", weights_only=True)
    payload.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del payload[key]
    torch.save(payload, root / "bad.pt")
    return ["evaluate", "--env", "BabyAI-GoToLocal-v0", "--model", str(root / "bad.pt"),
            "--episodes", "2"]


def _other_generation(root: Path) -> list[str]:
    episodes = load_demos(root / "demos" / "synth.pkl")
    save_demos(root / "demos" / "pair.pkl", episodes, {"env": ENV, "run_id": "aaaa"})
    save_demos(root / "demos" / "pair_valid.pkl", episodes[:4], {"env": ENV, "run_id": "bbbb"})
    return ["train", "--demos", "pair", *TRAIN]


def _original_levels_of_another_level(root: Path) -> list[str]:
    path = root / "levels" / "orig.pkl"
    path.write_bytes(pickle.dumps({"demo": {25: {10**12: {"mission": "go to the moon"}}}}))
    return ["levels-eval", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny",
            "--testing-levels-path", str(path)]


def _marker(root: Path) -> Path:
    return root.parent / "marker"


CASES = {
    # loading runs no code
    "hostile demo file": lambda root: _bad_demos(root, [Payload(_marker(root))]),
    "hostile pack_array images": lambda root: _bad_demos(root, [_record(1, images=blosc.compress(
        pickle.dumps(Payload(_marker(root))), typesize=1))]),
    "hostile level set": lambda root: (
        (root / "levels" / "evil.pkl").write_bytes(
            pickle.dumps({"demo": {25: {10**12: Payload(_marker(root))}}})),
        ["levels-eval", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny",
         "--testing-levels-path", str(root / "levels" / "evil.pkl")])[1],
    "hostile checkpoint": lambda root: _checkpoint(root, extra={"x": Payload(_marker(root))}),
    # writers never replace what they did not make
    "level set over a demo file": lambda root: [
        "levels", "--env", "GoToLocal", "--out", str(root / "demos" / "synth.pkl"),
        "--per-bin", "1", "--max-draws", "2"],
    "level set over another level set": lambda root: [
        "levels", "--env", "GoToLocal", "--out", "mini", "--per-bin", "1", "--max-draws", "2"],
    "level set --out a directory": lambda root: [
        "levels", "--env", "GoToLocal", "--out", str(root / "demos"), "--per-bin", "1"],
    "negative level-set seed": lambda root: ["levels", "--env", "GoToLocal", "--seed", "-1"],
    "corrupt .partial": lambda root: (
        (root / "levels" / "new.pkl.partial").write_bytes(b"\x80\x04garbage"),
        ["levels", "--env", "GoToLocal", "--out", "new", "--per-bin", "1"])[1],
    "demos over a level set": lambda root: [
        "demos", "--env", "GoToLocal", "--demos", str(root / "levels" / "mini.pkl"),
        "--episodes", "2", "--valid-episodes", "0"],
    "demos --episodes fewer than the file": lambda root: [
        "demos", "--env", "GoToLocal", "--demos", "real", "--episodes", "2",
        "--valid-episodes", "2"],
    "evaluate --out a file": lambda root: [
        "evaluate", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny", "--episodes", "2",
        "--out", str(root / "demos" / "synth.pkl")],
    "evaluate --threads 0": lambda root: [
        "evaluate", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny", "--threads", "0"],
    "visualize --out a demo file": lambda root: [
        "visualize", "--bot", "--env", "GoToLocal", "--out", str(root / "demos" / "synth.pkl")],
    "visualize --out a demo file named .gif": lambda root: (
        shutil.copy(root / "demos" / "synth.pkl", root / "demos" / "copy.gif"),
        ["visualize", "--bot", "--env", "GoToLocal", "--out", str(root / "demos" / "copy.gif")])[1],
    # bad data stopped at the door, naming file and episode
    "more images than actions": _episode_case(images=_images(0, extra=2)),
    "non-blosc image bytes": _episode_case(images=b"these are not blosc bytes"),
    "action 99": _episode_case(actions=[99] + make_episode(1).actions.tolist()[1:]),
    "image code 255": _episode_case(images=_images(0, value=255)),
    "integer thoughts": _episode_case(thoughts=[3] * len(make_episode(1))),
    "thoughts as one string": _episode_case(thoughts=THOUGHTS[0]),
    "envelope without episodes": lambda root: _bad_demos(
        root, {"format": "thought-cloning-demos", "version": 1, "meta": {}}),
    "meta of the wrong type": lambda root: _bad_demos(
        root, {"format": "thought-cloning-demos", "version": 1, "meta": [1],
               "episodes": [_record()]}),
    "valid file of another generation": _other_generation,
    "--episodes beyond the file": lambda root: [
        "train", "--demos", "synth", *TRAIN, "--episodes", "1000"],
    "--stop-tf beyond --epochs": lambda root: [
        "train", "--demos", "synth", *TRAIN, "--stop-tf", "5"],
    "--tf-floor above 1": lambda root: [
        "train", "--demos", "synth", *TRAIN, "--tf-floor", "1.5"],
    "--tf-floor without --stop-tf": lambda root: [
        "train", "--demos", "synth", *TRAIN, "--tf-floor", "0.5"],
    "unknown --history-thoughts": lambda root: [
        "train", "--demos", "synth", *TRAIN, "--history-thoughts", "demo"],
    # silent wrong results
    "rule with unknown colour": lambda root: _rules(root, {"color": "pink"}),
    "rule with unknown object type": lambda root: _rules(root, {"type": "dragon"}),
    "rule with requested as a string": lambda root: _rules(root, {"requested": "yes"}),
    "rule with a non-string field": lambda root: _rules(root, {"thought": 3}),
    "level set of another level": lambda root: [
        "levels-eval", "--env", "BabyAI-GoToLocal-v0", "--model", "tiny",
        "--testing-levels-path", "mini"],
    "original level set of another level": _original_levels_of_another_level,
    "checkpoint without state_dict": lambda root: _checkpoint(root, state_dict=None),
    "checkpoint with a duplicated vocabulary": lambda root: _checkpoint(
        root, vocab=["<pad>", "<unk>", "<s>", "</s>", "red", "red"]),
}

COMMANDS = {"train": train_tc, "levels": make_testing_levels, "levels-eval": evaluate_levels,
            "demos": make_agent_demos, "evaluate": evaluate, "visualize": visualize,
            "safety": evaluate_safety}


@pytest.fixture
def storage(tmp_path):
    root = tmp_path / "storage"
    write_demos(root, "synth", env=ENV)
    vocab = Vocabulary.build(list(MISSIONS) + list(THOUGHTS) + ["go to the red ball"])
    agent = build_agent(ModelConfig(vocab_size=len(vocab), memory_dim=16, image_dim=8,
                                    instr_dim=8))
    save_checkpoint(root / "models" / "tiny" / "best.pt", agent, vocab)
    write_level_set(root / "levels" / "mini.pkl", {"demo": {25: {10**12: {}}}},
                    "BabyAI-MiniBossLevel-v0", {"env": "BabyAI-MiniBossLevel-v0"})
    assert run(make_agent_demos.main, ["--env", "GoToLocal", "--demos", "real", "--episodes",
                                       "3", "--valid-episodes", "2", "--no-progress",
                                       "--storage", str(root)]) == 0
    (root / "reports").mkdir()
    (root / "reports" / "visualize").mkdir()
    return root


def _files(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.endswith(".lock")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_one_line_and_nothing_changed(storage, capsys, case):
    command, *argv = CASES[case](storage)
    if "--storage" not in argv:
        argv += ["--storage", str(storage)]
    before = _files(storage)
    capsys.readouterr()
    assert run(COMMANDS[command].main, argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    assert _files(storage) == before
    assert not _marker(storage).exists()
    print(f"{case}: {lines[0]}")

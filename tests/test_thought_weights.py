"""Per-family thought-loss weights (`--thought-weights`): the spec, the normalisation, the
loss against a hand computation, the batches that carry the weights, and the flag."""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthetic_demos import write_demos

from babyai.commands import train_tc
from babyai.common.errors import UserError
from babyai.data.dataset import load_dataset
from babyai.data.lanes import LanePlan
from babyai.env.thoughts import thought_family
from babyai.training import step as step_module
from babyai.training.config import TrainConfig
from babyai.training.loss import thought_nll
from babyai.training.thought_weights import (check_thought_weights, family_weights,
                                             parse_thought_weights, thought_weight_table)
from babyai.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
ENV = "BabyAI-GoToRedBall-v0"
TINY = dict(env=ENV, memory_dim=24, instr_dim=16, image_dim=16, batch_size=6, recurrence=4,
            conv_precision="fp32", val_episodes=0, device="cpu")


def test_specs_parse_and_bad_ones_say_what_is_wrong():
    assert parse_thought_weights("balanced") == "balanced"
    assert parse_thought_weights(" drop_temporary=4, unlock=0.5 ") == {
        "drop_temporary": 4.0, "unlock": 0.5}
    for spec, message in [("opn=2", "unknown family 'opn'"), ("open", "not FAMILY=WEIGHT"),
                          ("open=x", "not a number"), ("open=-1", "finite and >= 0"),
                          ("open=inf", "finite and >= 0"), (",", "is empty"),
                          ("open=1,open=2", "given twice")]:
        with pytest.raises(UserError, match=message):
            parse_thought_weights(spec)
    with pytest.raises(argparse.ArgumentTypeError, match="unknown family 'opn'"):
        check_thought_weights("opn=2")


def test_weights_are_scaled_to_mean_one_over_the_steps():
    steps = ["open"] * 6 + ["drop_temporary"] * 3 + ["close"]
    explicit = family_weights("drop_temporary=4", steps)  # raw 1, 4, 1; step mean 1.9
    assert explicit == pytest.approx({"open": 1 / 1.9, "drop_temporary": 4 / 1.9,
                                      "close": 1 / 1.9})
    balanced = family_weights("balanced", steps)  # raw 1/sqrt(share)
    raw = {"open": 0.6 ** -0.5, "drop_temporary": 0.3 ** -0.5, "close": 0.1 ** -0.5}
    mean = 0.6 * raw["open"] + 0.3 * raw["drop_temporary"] + 0.1 * raw["close"]
    assert balanced == pytest.approx({family: value / mean for family, value in raw.items()})
    for weights in (explicit, balanced):
        assert sum(weights[family] for family in steps) / len(steps) == pytest.approx(1.0)
    with pytest.raises(UserError, match="weight 0"):
        family_weights("open=0,close=0", ["open", "close"])


def test_the_table_gives_each_thought_row_its_familys_weight():
    texts = ["open red door", "drop red ball temporary to remove blocking object", "garbled"]
    ids = np.array([0, 0, 0, 1, 2, 0])
    table, weights = thought_weight_table("drop_temporary=5", texts, ids)
    assert [thought_family(text) for text in texts] == ["open", "drop_temporary", "unknown"]
    mean = (4 * 1 + 5 + 1) / 6
    np.testing.assert_allclose(table, [1 / mean, 5 / mean, 1 / mean], rtol=1e-6)
    assert table.dtype == np.float32 and weights["drop_temporary"] == pytest.approx(5 / mean)


def test_weighted_thought_nll_matches_a_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 9)
    targets = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0], [1, 3, 4, 8, 2]])
    weights = torch.tensor([2.0, 0.0, 0.5])
    log_probs = F.log_softmax(logits, dim=-1)
    per_step = []
    for row in range(3):
        tokens = [t for t in targets[row, 1:].tolist() if t != 0]
        per_step.append(-sum(log_probs[row, k, token] for k, token in enumerate(tokens)))
    expected = (2.0 * per_step[0] + 0.5 * per_step[2]) / 3
    assert float(thought_nll(logits, targets, weights=weights)) == pytest.approx(float(expected),
                                                                               rel=1e-5)
    unweighted = thought_nll(logits, targets)
    assert float(thought_nll(logits, targets, weights=torch.ones(3))) == pytest.approx(
        float(unweighted))


@pytest.fixture
def demos(tmp_path):
    write_demos(tmp_path, count=14, valid_count=4)
    return tmp_path


def test_every_batch_layout_carries_each_steps_weight(demos):
    data = load_dataset(demos / "demos" / "synth.pkl")
    data.thought_weights, _ = thought_weight_table("explore=3,remove_blocker=0",
                                                   data.thought_texts, data.thought_ids)
    assert len(set(data.thought_weights.tolist())) == 3
    plan = LanePlan.build(np.arange(len(data)), data.lengths, lanes=3, batches=2)
    for batch in (data.batch(range(6)), plan.batch(data, 0)):
        start = 0
        for window in batch.windows(4, "cpu"):
            stop = start + len(window.active)
            expected = (data.thought_weights[batch.thought_rows[start:stop]]
                        * batch.valid[start:stop])
            np.testing.assert_array_equal(window.thought_weights.numpy(), expected)
            start = stop
        assert start == batch.horizon
    data.thought_weights = None
    assert all(window.thought_weights is None for window in data.batch(range(6)).windows(4, "cpu"))


def _gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    batch = trainer.train_data.batch(range(6))
    trainer.train_batch(batch, True, batch.num_steps)
    return {n: p.grad.clone() for n, p in trainer.agent.named_parameters() if p.grad is not None}


def test_weights_reach_the_gradient_and_uniform_weights_change_nothing(demos, monkeypatch):
    monkeypatch.setattr(step_module, "THOUGHT_CHUNK", 7)
    gradients = {}
    for name, spec in [("none", None), ("uniform", "explore=2,remove_blocker=2,unknown=2"),
                       ("skewed", "explore=5")]:
        torch.manual_seed(0)
        trainer = Trainer(TrainConfig(**TINY, demos="synth", storage=str(demos), dropout=0.0,
                                      max_grad_norm=1e9,  # unclipped: comparable gradients
                                      thought_weights=spec, model=f"w_{name}"))
        monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
        gradients[name] = _gradients(trainer)
    decoder = "thinker.decoder.weight_hh_l0"
    for key in gradients["none"]:  # weights of 2 everywhere are scaled back to 1
        torch.testing.assert_close(gradients["uniform"][key], gradients["none"][key])
    assert not torch.allclose(gradients["skewed"][decoder], gradients["none"][decoder])
    # the action loss alone reaches the lower level's own layers: the same gradient there
    torch.testing.assert_close(gradients["skewed"]["policy.actor.0.weight"],
                               gradients["none"]["policy.actor.0.weight"])


def test_the_flag_trains_records_and_refuses(demos, caplog):
    base = ["--env", ENV, "--demos", "synth", "--storage", str(demos), "--memory-dim", "24",
            "--instr-dim", "16", "--image-dim", "16", "--batch-size", "6", "--epochs", "1",
            "--val-episodes", "0", "--threads", "1"]
    with caplog.at_level("INFO"):
        summary = train_tc.main(base + ["--thought-weights", "balanced", "--model", "bal"])
    config = json.loads((summary.run_dir / "config.json").read_text())
    assert config["thought_weights"] == "balanced"
    line = next(r.getMessage() for r in caplog.records if "thought-loss weights" in r.getMessage())
    assert "remove_blocker" in line and "explore" in line and "unknown" in line
    with pytest.raises(UserError, match="a BC run has none"):
        Trainer(TrainConfig(**TINY, demos="synth", storage=str(demos), use_thoughts=False,
                            thought_weights="balanced"))
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "train_tc.py"), *base,
                             "--thought-weights", "open=-2", "--model", "neg"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and not (demos / "models" / "neg").exists()
    assert result.stderr.strip().splitlines()[-1].startswith(
        "train_tc.py: error: argument --thought-weights: weight of 'open' must be finite")
    assert math.isfinite(float(summary.last_metrics["train/thought_nll"]))

"""Speed-ups leave the loss and the gradients of a batch unchanged (stated tolerances)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synthetic_demos import write_demos

from babyai.agent.layers import use_bf16_convolutions
from babyai.data.lanes import LanePlan
from babyai.common.errors import UserError
from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

ENV = "BabyAI-GoToRedBall-v0"
TINY = dict(env=ENV, memory_dim=24, instr_dim=16, image_dim=16, batch_size=6, recurrence=4,
            val_episodes=0, max_grad_norm=1e9, conv_precision="fp32",
            device="cpu")  # CPU arithmetic (bf16, exact layouts); the GPU's: tests/test_cuda.py


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    write_demos(tmp_path, count=8, valid_count=2)
    trainer = Trainer(TrainConfig(**TINY, demos="synth", storage=str(tmp_path)))
    monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
    return trainer


def _loss_and_grads(trainer: Trainer, teacher_forcing: bool) -> tuple[float, dict]:
    torch.manual_seed(3)  # same dropout masks in both runs
    batch = trainer.train_data.batch(range(6))
    metrics = trainer.train_batch(batch, teacher_forcing, batch.num_steps)
    grads = {n: p.grad.clone() for n, p in trainer.agent.named_parameters() if p.grad is not None}
    return metrics["loss"], grads


def test_thought_table_encoding_leaves_loss_and_gradients_unchanged(trainer, monkeypatch):
    """Encoding each distinct thought of a window once and gathering == encoding every step's."""
    calls = []
    encode = trainer.agent.encode_thought_table
    monkeypatch.setattr(trainer.agent, "encode_thought_table",
                        lambda table, index: calls.append(len(table)) or encode(table, index))
    loss, grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert calls and max(calls) < 6 * 4  # fewer distinct thoughts than steps in a window
    monkeypatch.setattr(trainer.agent, "encode_thought_table", lambda table, index: None)
    per_step_loss, per_step_grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert loss == pytest.approx(per_step_loss, rel=1e-6, abs=1e-6)
    assert grads.keys() == per_step_grads.keys() and "thought_encoder.gru.weight_hh_l0" in grads
    for name in grads:
        torch.testing.assert_close(grads[name], per_step_grads[name], atol=1e-6, rtol=1e-5,
                                   msg=name)


def _episode_batch_and_lanes(trainer: Trainer, count: int, lanes: int):
    data = trainer.train_data
    indices = np.arange(count)
    plan = LanePlan.build(indices, data.lengths[indices], lanes=lanes, batches=1)
    return data.batch(indices), plan


@pytest.mark.parametrize("use_thoughts,teacher_forcing", [(True, True), (True, False), (False, True)])
def test_lanes_equal_the_per_episode_layout_in_eval_mode(tmp_path, monkeypatch, use_thoughts,
                                                         teacher_forcing):
    """With BatchNorm's running statistics (eval mode) and recurrence >= the longest lane, the
    lane layout's loss and gradients are the per-episode layout's (only the layout differs)."""
    write_demos(tmp_path, count=8, valid_count=2)
    trainer = Trainer(TrainConfig(**dict(TINY, recurrence=1000), demos="synth",
                                  storage=str(tmp_path), use_thoughts=use_thoughts))
    monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
    trainer.agent.eval()
    episodes, plan = _episode_batch_and_lanes(trainer, 7, lanes=3)
    assert len(plan) == 1 and plan.batch_steps(0) == episodes.num_steps
    lanes = plan.batch(trainer.train_data, 0)
    assert len(lanes) == 3 and lanes.horizon < episodes.horizon * 3
    results = []
    for batch in (episodes, lanes):
        metrics = trainer.train_batch(batch, teacher_forcing, episodes.num_steps)
        grads = {n: p.grad.clone() for n, p in trainer.agent.named_parameters()
                 if p.grad is not None}
        results.append((metrics, grads))
    (first, grads), (second, lane_grads) = results
    for key in ("loss", "action_nll", "thought_nll", "action_acc", "steps"):
        assert second[key] == pytest.approx(first[key], rel=1e-5, abs=1e-6), key
    assert grads.keys() == lane_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(lane_grads[name], grads[name], atol=1e-6, rtol=1e-4, msg=name)


def test_lane_plan_covers_every_step_once_with_full_rows_and_the_same_batch_count(tmp_path):
    write_demos(tmp_path, count=14, valid_count=2)
    trainer = Trainer(TrainConfig(**TINY, demos="synth", storage=str(tmp_path)))
    data = trainer.train_data
    indices = np.random.default_rng(0).permutation(len(data))
    lengths = data.lengths[indices]
    plan = LanePlan.build(indices, lengths, lanes=4, batches=4)
    assert len(plan) <= 4 and sum(plan.batch_steps(k) for k in range(len(plan))) == lengths.sum()
    assert list(plan.totals) == sorted(plan.totals, reverse=True)
    assert plan.totals[0] - plan.totals[-1] <= lengths.max()
    seen = {}
    for number in range(len(plan)):
        halves = [plan.batch(data, number, slice(rank, None, 2)) for rank in range(2)]
        assert sum(b.num_steps for b in halves) == plan.batch_steps(number)
        batch = plan.batch(data, number)
        assert batch.num_steps == plan.batch_steps(number)
        for t in range(batch.horizon):
            active = batch.valid[t].sum()
            assert batch.valid[t, :active].all()  # active rows are a prefix
        for row in range(len(batch)):
            for t in range(int(batch.lengths[row])):
                episode = int(batch.episodes[batch.mission_index[t, row]])
                seen.setdefault(episode, []).append((batch.actions[t, row],
                                                     batch.starts[t, row]))
    assert sorted(seen) == sorted(indices.tolist())
    for episode, steps in seen.items():
        start, stop = data.offsets[episode], data.offsets[episode + 1]
        assert [int(a) for a, _ in steps] == data.actions[start:stop].tolist()
        assert [bool(s) for _, s in steps] == [True] + [False] * (len(steps) - 1)


def test_bf16_convolutions_keep_loss_and_gradients_within_tolerance(trainer):
    """bfloat16 convolutions (inputs and weights rounded to 8-bit mantissas, float32
    accumulation) change the arithmetic, so the tolerance is stated: the batch loss within
    1%, and the whole gradient within 10% relative error (cosine > 0.99). Single conv
    weight gradients differ more (up to ~30% in this tiny model): with BatchNorm in training
    mode they are small residuals of large, cancelling sums."""
    use_bf16_convolutions(trainer.agent, False)
    loss, grads = _loss_and_grads(trainer, teacher_forcing=True)
    use_bf16_convolutions(trainer.agent, True)
    low_loss, low_grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert low_loss == pytest.approx(loss, rel=1e-2)
    assert low_loss != loss  # the convolutions did run in bfloat16
    assert low_grads.keys() == grads.keys()
    whole = torch.cat([grad.flatten() for grad in grads.values()])
    low = torch.cat([low_grads[name].flatten() for name in grads])
    assert float((low - whole).norm() / whole.norm()) < 0.1
    assert float(torch.nn.functional.cosine_similarity(whole, low, dim=0)) > 0.99


def test_default_threads_follow_the_free_cores(monkeypatch):
    from babyai.common import runtime
    assert runtime.default_threads(3) == 3  # an explicit choice is kept
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert runtime.default_threads(0) == 2  # idle: every core
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert runtime.default_threads(0) == 1  # one core busy
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert runtime.default_threads(0) == 1  # overloaded: still one thread


def test_a_run_resumes_with_the_layout_it_started_with(tmp_path):
    """The defaults changed (lanes, bf16 where native): a run started per-episode in fp32
    resumes that way when the command leaves the two flags at their defaults."""
    write_demos(tmp_path, count=8, valid_count=2)
    common = dict(TINY, demos="synth", storage=str(tmp_path), model="old")
    Trainer(TrainConfig(**dict(common, layout="episodes", conv_precision="fp32"), epochs=1)).run()
    resumed = Trainer(TrainConfig(**dict(common, conv_precision="auto"), epochs=1))
    assert (resumed.config.layout, resumed.config.conv_precision) == ("episodes", "fp32")
    Trainer(TrainConfig(**dict(common, model="new", conv_precision="fp32"), epochs=1)).run()
    with pytest.raises(UserError, match="layout"):  # a lanes run, resumed per-episode
        Trainer(TrainConfig(**dict(common, model="new", conv_precision="fp32"),
                            layout="episodes", epochs=1))


def test_bench_train_measures_a_tiny_setting_and_refuses_a_missing_gpu():
    import torch

    from babyai.commands import bench_train
    from babyai.common.errors import UserError

    result = bench_train.measure("p", dict(bench_train.NEW, tc=True, tf=True), batches=1,
                                 threads=1, batch_size=4)
    assert result["fps"] > 0 and result["frames"] > 0 and result["peak_gpu_mb"] == 0.0
    mixed = bench_train.measure("p", dict(bench_train.MIXED, tc=True, tf=True), batches=1,
                                threads=1, batch_size=4, profile=3)
    assert mixed["fps"] > 0 and mixed["frames"] == result["frames"]
    profile = mixed["profile"]  # --profile: where the time goes, by kind and operator
    assert sum(profile["kinds"].values()) == pytest.approx(1.0)
    assert profile["kinds"]["convolutions"] > 0 and profile["kinds"]["matrix products"] > 0
    assert len(profile["top"]) == 3 and all(0 < share <= 1 for _, share in profile["top"])
    assert "profile" not in result
    with pytest.raises(UserError, match="--profile: must be >= 0"):
        bench_train.main(["--profile", "-1"])
    assert "TC teacher-forced, cpu bf16" in bench_train.variants("b")
    per_episode = bench_train.variants("a")["TC teacher-forced, per-episode cpu bf16"]
    assert per_episode["layout"] == "episodes" and per_episode["cpu_precision"] == "bf16"
    assert not any("cpu bf16" in label for label in bench_train.variants("b", "cuda"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            bench_train.main(["--device", "cuda", "--settings", "p"])


def test_cpu_bf16_autocast_keeps_loss_and_gradients_within_tolerance(trainer):
    """`--cpu-precision bf16` runs the training forward passes under bfloat16 autocast
    (every matrix product and convolution rounded to 8-bit mantissas, float32 accumulation):
    the tolerance is stated as for the bf16 convolutions, the batch loss within 2% and the
    whole gradient within 10% relative error (cosine > 0.99); memories stay float32."""
    loss, grads = _loss_and_grads(trainer, teacher_forcing=True)
    trainer.config.cpu_precision = "bf16"
    low_loss, low_grads = _loss_and_grads(trainer, teacher_forcing=True)
    assert low_loss == pytest.approx(loss, rel=2e-2)
    assert low_loss != loss  # the forward pass did run in bfloat16
    assert low_grads.keys() == grads.keys()
    assert all(grad.dtype == torch.float32 for grad in low_grads.values())
    whole = torch.cat([grad.flatten() for grad in grads.values()])
    low = torch.cat([low_grads[name].flatten() for name in grads])
    assert float((low - whole).norm() / whole.norm()) < 0.1
    assert float(torch.nn.functional.cosine_similarity(whole, low, dim=0)) > 0.99


def test_cpu_precision_is_checked_and_kept_on_resume(tmp_path):
    write_demos(tmp_path, count=8, valid_count=2)
    with pytest.raises(UserError, match="cpu-precision"):
        TrainConfig(**TINY, demos="synth", storage=str(tmp_path), cpu_precision="fp8").check()
    common = dict(TINY, demos="synth", storage=str(tmp_path), model="mixed", epochs=1)
    Trainer(TrainConfig(**dict(common, cpu_precision="bf16"))).run()
    assert Trainer(TrainConfig(**dict(common, epochs=2))).config.cpu_precision == "bf16"

"""The trainer: windowed BPTT against a step-by-step rollout, resume, errors, scripts, 2 ranks."""
from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from synthetic_demos import write_demos

from babyai.training import step as step_module
from babyai.training import trainer as trainer_module
from babyai.agent.checkpoint import load_checkpoint, read_checkpoint
from babyai.data.dataset import load_dataset
from babyai.data.lanes import LanePlan
from babyai.common.errors import UserError
from babyai.training.loss import imitation_loss
from babyai.agent.model import ModelConfig, build_agent
from babyai.training.config import TrainConfig
from babyai.training.step import NonFiniteLoss
from babyai.training.trainer import Trainer, train
from babyai.training.window import run_window
from babyai.commands import train_bc, train_tc

REPO = Path(__file__).resolve().parents[1]
ENV = "BabyAI-GoToRedBall-v0"
TINY = dict(env=ENV, memory_dim=24, instr_dim=16, image_dim=16, batch_size=6, recurrence=4,
            conv_precision="fp32",  # exact comparisons below; bf16 has its own test
            val_episodes=0)


@pytest.fixture
def demos(tmp_path):
    write_demos(tmp_path, count=14, valid_count=4)
    return tmp_path


@pytest.mark.parametrize("use_thoughts,teacher_forcing,decoder", [
    (True, True, "memory"), (True, False, "memory"), (False, True, "memory"),
    (True, True, "mission"), (True, False, "mission")])
def test_windowed_run_matches_step_by_step_rollout(tmp_path, use_thoughts, teacher_forcing,
                                                   decoder):
    write_demos(tmp_path, count=5, valid_count=1)
    data = load_dataset(tmp_path / "demos" / "synth.pkl")
    torch.manual_seed(0)
    agent = build_agent(ModelConfig(len(data.vocab), image_dim=16, memory_dim=24, instr_dim=16,
                                    use_thoughts=use_thoughts, thought_decoder=decoder)).eval()
    batch = data.batch(range(5))
    windowed = {}
    with torch.no_grad():
        memory = agent.initial_memory(len(batch))
        missions = batch.mission_tensor("cpu")
        step = 0
        for window in batch.windows(3, "cpu"):
            output, memory = run_window(agent, window, missions, memory, teacher_forcing)
            row = 0
            for t, active in enumerate(window.active):
                for column in range(active):
                    windowed[(column, step + t)] = (output.action_logits[row],
                                                    None if output.thought_logits is None
                                                    else output.thought_logits[row])
                    row += 1
            step += len(window.active)
        assert len(windowed) == batch.num_steps
        # reference: each episode alone, one step at a time, nothing windowed or batched
        for column in range(len(batch)):
            mission = agent.encode_missions(missions[column:column + 1, :])
            memory = agent.initial_memory(1)
            for t in range(int(batch.lengths[column])):
                image = torch.from_numpy(batch.images[t, column:column + 1]).long()
                target = torch.from_numpy(batch.thought_table[batch.thought_rows[t, column]])[None]
                target = target[:, : int((target != 0).sum())]
                out = agent(image, mission, memory, thought_target=target if use_thoughts else None,
                            teacher_forcing=teacher_forcing)
                memory = out.memory
                logits, thought_logits = windowed[(column, t)]
                torch.testing.assert_close(logits, out.action_logits[0], atol=1e-5, rtol=1e-4)
                if use_thoughts:
                    n = out.thought_logits.shape[1]
                    torch.testing.assert_close(thought_logits[:n], out.thought_logits[0],
                                               atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("teacher_forcing,decoder,layout", [
    (True, "memory", "lanes"), (False, "memory", "lanes"),
    (True, "mission", "lanes"), (False, "mission", "episodes")])
def test_train_batch_gradients_equal_one_plain_backward_over_each_window(
        demos, monkeypatch, teacher_forcing, decoder, layout):
    trainer = Trainer(TrainConfig(**TINY, demos="synth", storage=str(demos), dropout=0.0,
                                  max_grad_norm=1e9, entropy_coef=0.05, device="cpu",
                                  thought_decoder=decoder, layout=layout))
    monkeypatch.setattr(step_module, "THOUGHT_CHUNK", 7)  # several decoder chunks per window
    monkeypatch.setattr(trainer.optimizer, "step", lambda *args, **kwargs: None)
    data = trainer.train_data
    if layout == "lanes":  # continuous streams: episodes start mid-window, missions gathered
        plan = LanePlan.build(np.arange(len(data)), data.lengths, lanes=3, batches=2)
        batch = plan.batch(data, 0)
        assert batch.mission_index is not None and batch.starts[1:].any()
    else:
        batch = data.batch(range(6))
    metrics = trainer.train_batch(batch, teacher_forcing, batch.num_steps)
    chunked = {n: p.grad.clone() for n, p in trainer.agent.named_parameters() if p.grad is not None}

    agent = trainer.agent
    agent.zero_grad(set_to_none=True)
    memory = agent.initial_memory(len(batch))
    missions = batch.mission_tensor("cpu")
    total = 0.0
    for window in batch.windows(trainer.config.recurrence, "cpu"):
        output, memory = run_window(agent, window, missions, memory, teacher_forcing)
        parts = imitation_loss(output.action_logits, output.actions, output.thought_logits,
                               output.thought_targets, entropy_coef=0.05, sg_coef=2.0,
                               denominator=batch.num_steps)
        parts.total.backward()
        memory = memory.detach()
        total += parts.total.item()
    plain = {n: p.grad for n, p in agent.named_parameters() if p.grad is not None}
    assert metrics["loss"] == pytest.approx(total, rel=1e-5)
    assert chunked.keys() == plain.keys() and "thinker.decoder.weight_hh_l0" in plain
    if decoder == "mission":  # the decoder's reading of the mission trains the encoder too
        assert "thinker.word_attention.query.weight" in plain
    for name in plain:
        torch.testing.assert_close(chunked[name], plain[name], atol=1e-6, rtol=1e-4, msg=name)


def _final_state(run_dir: Path) -> dict:
    return read_checkpoint(run_dir / "last.pt")["state_dict"]


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_resume_after_interruption_ends_where_an_uninterrupted_run_does(demos, monkeypatch):
    common = dict(TINY, demos="synth", storage=str(demos), epochs=3, epoch_length=10,
                  stop_tf=1, dropout=0.2)
    straight = train(TrainConfig(model="straight", **common))
    assert straight.epochs_done == 3

    original_save = Trainer.save

    def save_then_die(self, path, epoch):
        original_save(self, path, epoch)
        if path.name == "last.pt" and epoch == 1:
            raise KeyboardInterrupt  # killed right after epoch 1 was saved
    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(model="killed", **common))
    monkeypatch.setattr(Trainer, "save", original_save)
    assert read_checkpoint(demos / "models" / "killed" / "last.pt")["extra"]["epoch"] == 1
    resumed = train(TrainConfig(model="killed", **common))
    assert resumed.epochs_done == 3 and resumed.frames == straight.frames

    a, b = _final_state(straight.run_dir), _final_state(resumed.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=key)
    assert [r["epoch"] for r in _rows(resumed.run_dir)] == ["1", "2", "3"]
    assert [r["train/loss"] for r in _rows(resumed.run_dir)] == \
        [r["train/loss"] for r in _rows(straight.run_dir)]
    # a finished run rerun with the same command does nothing more
    again = train(TrainConfig(model="killed", **common))
    assert again.epochs_done == 3 and len(_rows(resumed.run_dir)) == 3


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(demos, monkeypatch):
    config = TrainConfig(**TINY, demos="synth", storage=str(demos), epochs=3, model="nan")
    real_loss = step_module.imitation_loss
    state = {"epoch_one_done": False}

    def poisoned(*args, **kwargs):
        parts = real_loss(*args, **kwargs)
        if state["epoch_one_done"]:
            return parts._replace(total=parts.total * float("nan"))
        return parts
    original_save = Trainer.save

    def save(self, path, epoch):
        original_save(self, path, epoch)
        state["epoch_one_done"] = True
    monkeypatch.setattr(step_module, "imitation_loss", poisoned)
    monkeypatch.setattr(Trainer, "save", save)
    with pytest.raises(NonFiniteLoss, match=r"loss became nan .*episode seeds \[.*last good checkpoint"):
        train(config)
    checkpoint = load_checkpoint(demos / "models" / "nan" / "last.pt")
    assert checkpoint.extra["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in checkpoint.agent.parameters())


def test_a_failing_batch_names_its_episode_seeds(demos, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("shape mismatch somewhere")
    monkeypatch.setattr(step_module, "run_window", broken)
    with pytest.raises(RuntimeError, match=r"episode seeds \[\d+(, \d+)*\]\).*shape mismatch"):
        train(TrainConfig(**TINY, demos="synth", storage=str(demos), epochs=1))


def test_tc_script_end_to_end_writes_config_logs_and_checkpoints(demos):
    tc = train_tc
    summary = tc.main(["--env", ENV, "--demos", "synth", "--storage", str(demos),
                       "--memory-dim", "24", "--instr-dim", "16", "--image-dim", "16",
                       "--batch-size", "6", "--recurrence", "5", "--epochs", "2",
                       "--epoch-length", "12", "--val-episodes", "2", "--val-interval", "1",
                       "--log-interval", "1", "--lr", "1e-3", "--seed", "0", "--sg-coef", "2",
                       "--warm-start", "--stop-tf", "1", "--instr-arch", "attgru",
                       "--val-seed", "2023", "--episodes", "12", "--entropy-coef", "0.01",
                       "--optim-eps", "1e-5", "--patience", "5", "--tb", "--save-interval", "1",
                       "--device", "cpu", "--threads", "1", "--model", "tc_run"])
    run_dir = demos / "models" / "tc_run"
    assert summary.run_dir == run_dir and summary.epochs_done == 2
    assert {"config.json", "log.csv", "best.pt", "last.pt"} <= {p.name for p in run_dir.iterdir()}
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    rows = _rows(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["tf_prob"] == "1" and rows[1]["tf_prob"] == "0"
    assert float(rows[0]["lr"]) == pytest.approx(2e-4)  # warm start: lr*(0+1)/5
    assert rows[0]["val/success_rate"] != "" and rows[0]["val/thought_acc"] != ""
    assert int(rows[1]["frames"]) > int(rows[0]["frames"]) > 0
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint.agent.config.memory_dim == 24 and checkpoint.agent.config.use_thoughts


def test_tc_without_teacher_forcing_never_feeds_the_demonstrators_thoughts(demos, monkeypatch):
    seen = []
    run = step_module.BatchStep.run

    def recording(self, batch, teacher_forcing, *args, **kwargs):
        seen.append(teacher_forcing)
        return run(self, batch, teacher_forcing, *args, **kwargs)
    monkeypatch.setattr(step_module.BatchStep, "run", recording)
    summary = train_tc.main(["--env", ENV, "--demos", "synth", "--storage", str(demos),
                             "--memory-dim", "24", "--instr-dim", "16", "--image-dim", "16",
                             "--batch-size", "6", "--epochs", "2", "--val-episodes", "0",
                             "--sg-coef", "0", "--no-teacher-forcing", "--model", "latent"])
    assert seen and not any(seen)
    assert [r["tf_prob"] for r in _rows(summary.run_dir)] == ["0", "0"]
    with pytest.raises(UserError, match="--no-teacher-forcing leaves no schedule"):
        train_tc.main(["--env", ENV, "--demos", "synth", "--storage", str(demos),
                       "--epochs", "2", "--no-teacher-forcing", "--stop-tf", "1"])


def test_bc_script_trains_actions_only(demos):
    bc = train_bc
    summary = bc.main(["--env", ENV, "--demos", "synth", "--storage", str(demos),
                       "--memory-dim", "24", "--instr-dim", "16", "--image-dim", "16",
                       "--batch-size", "7", "--epochs", "1", "--val-episodes", "0"])
    checkpoint = load_checkpoint(summary.run_dir / "last.pt")
    assert not checkpoint.agent.config.use_thoughts
    assert summary.run_dir.name == "synth_bc_seed1"
    row = _rows(summary.run_dir)[0]
    assert float(row["train/thought_nll"]) == 0.0 and row["val/thought_acc"] == ""
    with pytest.raises(UserError, match="unrecognized"):  # no thought flags for BC
        bc.main(["--demos", "synth", "--sg-coef", "1"])


def test_clear_errors(demos, tmp_path):
    tc = train_tc
    base = ["--env", ENV, "--storage", str(demos), "--memory-dim", "24", "--instr-dim", "16",
            "--image-dim", "16", "--epochs", "1", "--val-episodes", "0"]
    with pytest.raises(UserError, match="demonstrations not found"):
        tc.main(base + ["--demos", "nothing_here"])
    with pytest.raises(UserError, match="unknown --instr-arch 'gru'"):
        tc.main(base + ["--demos", "synth", "--instr-arch", "gru"])
    with pytest.raises(UserError, match="not of BabyAI-BossLevel-v0"):
        tc.main(base[2:] + ["--env", "BabyAI-BossLevel-v0", "--demos", "synth"])
    with pytest.raises(UserError, match="would replay .* training levels"):
        tc.main(base[:-2] + ["--demos", "synth", "--val-seed", "3", "--val-episodes", "2"])
    # a run directory holding a checkpoint of another architecture
    tc.main(base + ["--demos", "synth", "--model", "arch"])
    with pytest.raises(UserError, match="memory_dim: 24 -> 32"):
        tc.main(base + ["--demos", "synth", "--model", "arch", "--memory-dim", "32"])
    # and the one-line message of the script on the command line
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "train_tc.py"), *base,
                             "--demos", "synth", "--instr-arch", "gru"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train_tc.py: error: unknown --instr-arch 'gru'; available: attgru"]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["episodes", "lanes"])
def test_two_ranks_on_cpu_split_each_epoch_and_stay_in_sync(demos, layout):
    args = ["--env", ENV, "--demos", "synth", "--storage", str(demos), "--memory-dim", "24",
            "--instr-dim", "16", "--image-dim", "16", "--batch-size", "6", "--recurrence", "4",
            "--epochs", "2", "--val-episodes", "0", "--device", "cpu", "--layout", layout,
            "--conv-precision", "fp32"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", str(REPO / "scripts" / "train_tc.py"),
                             *args, "--model", "ddp"],
                            capture_output=True, text=True, timeout=300, env=env, cwd=demos)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_rows = _rows(demos / "models" / "ddp")
    single = train(TrainConfig(**dict(TINY, recurrence=4), demos="synth", storage=str(demos),
                               epochs=2, model="single", device="cpu", layout=layout))
    single_rows = _rows(single.run_dir)
    # the ranks together consumed exactly the episodes (and steps) of a single-process run
    assert [r["frames"] for r in ddp_rows] == [r["frames"] for r in single_rows]
    assert [r["update"] for r in ddp_rows] == [r["update"] for r in single_rows]
    # gradients were averaged: the first batch's loss is that of the whole batch
    assert float(ddp_rows[0]["train/loss"]) == pytest.approx(float(single_rows[0]["train/loss"]),
                                                           rel=0.05)
    assert load_checkpoint(demos / "models" / "ddp" / "last.pt").extra["epoch"] == 2


@pytest.mark.slow
def test_a_finished_run_extended_to_more_epochs_equals_one_trained_that_long(demos):
    common = dict(TINY, demos="synth", storage=str(demos), epoch_length=10, dropout=0.2)
    straight = train(TrainConfig(model="straight", epochs=3, **common))
    short = train(TrainConfig(model="extended", epochs=2, **common))
    assert short.epochs_done == 2
    extended = train(TrainConfig(model="extended", epochs=3, **common))
    assert extended.epochs_done == 3 and extended.frames == straight.frames
    a, b = _final_state(straight.run_dir), _final_state(extended.run_dir)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=key)
    assert [r["train/loss"] for r in _rows(extended.run_dir)] == \
        [r["train/loss"] for r in _rows(straight.run_dir)]
    with pytest.raises(UserError, match="epochs: 3 -> 2"):
        train(TrainConfig(model="extended", epochs=2, **common))


def test_a_run_with_a_falling_teacher_forcing_schedule_is_not_extended(demos):
    common = dict(TINY, demos="synth", storage=str(demos), epoch_length=4, stop_tf=1)
    train(TrainConfig(model="tf", epochs=2, **common))
    with pytest.raises(UserError, match="cannot be extended from 2 to 3 epochs.*--stop-tf"):
        train(TrainConfig(model="tf", epochs=3, **common))


# larger than TINY, so that torch splits the work over two threads
THREADED = dict(env=ENV, demos="synth", epochs=2, batch_size=16, recurrence=10, memory_dim=64,
                instr_dim=32, image_dim=32, val_episodes=0)


@pytest.mark.slow
def test_two_threads_train_the_same_weights_twice(tmp_path):
    """Multi-threaded CPU kernels may sum in any order; the trainer asks for deterministic
    ones. Without that, these settings ended with different weights in 6 of 6 tries."""
    write_demos(tmp_path, count=64, valid_count=2, min_len=10, max_len=30)
    common = dict(THREADED, storage=str(tmp_path), threads=2)
    first = _final_state(train(TrainConfig(model="first", **common)).run_dir)
    second = _final_state(train(TrainConfig(model="second", **common)).run_dir)
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=0, rtol=0, msg=key)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after each run


@pytest.mark.slow
def test_deterministic_kernels_change_nothing_at_one_thread(tmp_path, monkeypatch):
    """Studies train with one thread each; their published runs predate the deterministic
    kernels and must come out the same with them."""
    write_demos(tmp_path, count=64, valid_count=2, min_len=10, max_len=30)
    common = dict(THREADED, storage=str(tmp_path), threads=1)
    with_them = _final_state(train(TrainConfig(model="deterministic", **common)).run_dir)
    monkeypatch.setattr(trainer_module, "deterministic_kernels",
                        lambda device: contextlib.nullcontext())
    without = _final_state(train(TrainConfig(model="default", **common)).run_dir)
    for key in with_them:
        torch.testing.assert_close(with_them[key], without[key], atol=0, rtol=0, msg=key)


def test_kept_epochs_hold_the_weights_after_those_epochs_without_optimizer_state(demos):
    common = dict(TINY, demos="synth", storage=str(demos), epoch_length=10, dropout=0.2)
    run = train(TrainConfig(model="kept", epochs=5, keep_interval=2, **common))
    kept_dir = run.run_dir / "epochs"
    assert sorted(p.name for p in kept_dir.iterdir()) == \
        ["epoch_0002.pt", "epoch_0004.pt", "epoch_0005.pt"]  # every 2nd and the last
    two = train(TrainConfig(model="two", epochs=2, **common))
    for path, reference in ((kept_dir / "epoch_0002.pt", _final_state(two.run_dir)),
                            (kept_dir / "epoch_0005.pt", _final_state(run.run_dir))):
        payload = read_checkpoint(path)
        assert "optimizer" not in payload["extra"]
        for key, value in reference.items():
            torch.testing.assert_close(payload["state_dict"][key], value, atol=0, rtol=0, msg=key)
    agent, vocab, extra = load_checkpoint(kept_dir / "epoch_0004.pt")
    assert extra["epoch"] == 4 and len(vocab) == agent.config.vocab_size
    # a kept epoch starts another run, and --keep-interval may change on resume
    onward = train(TrainConfig(model="onward", epochs=1, init_from=str(kept_dir / "epoch_0004.pt"),
                               **common))
    assert onward.epochs_done == 1
    again = train(TrainConfig(model="kept", epochs=6, keep_interval=3, **common))
    assert again.epochs_done == 6 and (kept_dir / "epoch_0006.pt").is_file()
    with pytest.raises(UserError, match="--keep-interval must be >= 0"):
        TrainConfig(model="bad", epochs=1, keep_interval=-1, **common).check()

"""PPO fine-tuning: GAE and the loss by hand, windows against collection, resume after a kill."""
from __future__ import annotations

import csv
import math
import pickle

import pytest
import torch

from synthetic_demos import write_demos

from babyai.agent.checkpoint import load_checkpoint, save_checkpoint
from babyai.agent.model import ModelConfig, build_agent
from babyai.common.cli import run
from babyai.common.errors import UserError
from babyai.data.vocab import Vocabulary
from babyai.rl import trainer as trainer_module
from babyai.rl.collect import Collector
from babyai.rl.envs import make_episodes, make_vector_envs
from babyai.rl.ppo import (LossCoefficients, compute_gae, ppo_loss, thought_loss,
                           window_outputs)
from babyai.commands import train_rl

ENV = "BabyAI-GoToRedBall-v0"
WORDS = ("go to the red ball explore unseen area pick up a key open door blue green grey "
         "purple yellow box you").split()


def test_gae_matches_a_hand_computation():
    # gamma 0.9, lambda 0.8; the episode ends at step 1, so step 1 bootstraps nothing and
    # step 0 sees only step 1's advantage:
    # A2 = 2 + 0.9*1.0 - 0.3 = 2.6;  A1 = 0 - 0.4 = -0.4;
    # A0 = (1 + 0.9*0.4 - 0.5) + 0.9*0.8*(-0.4) = 0.86 - 0.288 = 0.572
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    advantages, returns = compute_gae(rewards, values, dones, torch.tensor([1.0]), 0.9, 0.8)
    assert advantages[:, 0].tolist() == pytest.approx([0.572, -0.4, 2.6])
    assert returns[:, 0].tolist() == pytest.approx([1.072, 0.0, 2.9])


def test_ppo_loss_matches_a_hand_computation():
    # Uniform new policy over 2 actions: log pi = log 0.5 for both steps.
    # step 0: old pi 0.25 -> ratio 2, A=+1: min(2, 1.2) = 1.2        -> -1.2
    # step 1: old pi 0.8 -> ratio 0.625, A=-2: min(-1.25, -1.6) = -1.6 -> +1.6; policy 0.2
    # values: step 0 max((1-0.6)^2, (0.5+0.2-0.6)^2) = 0.16; step 1 max(0.25, 0.25); mean 0.205
    # loss = 0.2 + 0.5*0.205 - 0.01*ln 2
    parts = ppo_loss(torch.zeros(2, 2), torch.tensor([0, 1]),
                     torch.log(torch.tensor([0.25, 0.8])), torch.tensor([1.0, -2.0]),
                     torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.1]), torch.tensor([0.6, 0.5]),
                     LossCoefficients(clip_eps=0.2, value_loss_coef=0.5, entropy_coef=0.01))
    assert float(parts.policy) == pytest.approx(0.2)
    assert float(parts.value) == pytest.approx(0.205)
    assert float(parts.entropy) == pytest.approx(math.log(2))
    assert float(parts.loss) == pytest.approx(0.2 + 0.1025 - 0.01 * math.log(2))
    assert float(parts.clip_fraction) == 1.0


def _tiny_agent(use_thoughts: bool, decoder: str = "memory"):
    vocab = Vocabulary(WORDS)
    torch.manual_seed(0)
    agent = build_agent(ModelConfig(len(vocab), image_dim=16, memory_dim=24, instr_dim=16,
                                    use_thoughts=use_thoughts, thought_decoder=decoder)).eval()
    return agent, vocab


@pytest.mark.parametrize("use_thoughts,decoder", [(True, "memory"), (False, "memory"),
                                                  (True, "mission")])
def test_windows_replay_collection_exactly(use_thoughts, decoder):
    """Re-running BPTT windows from the recorded memories gives collection's log-probs and
    values, across episode boundaries inside windows (episodes of 3 steps, windows of 4)."""
    agent, vocab = _tiny_agent(use_thoughts, decoder)
    envs = make_vector_envs(make_episodes(ENV, None, 3, 0, max_steps=3), 1)
    collector = Collector(agent, vocab, envs, sample_seed=0)
    collector.collect(4, 0.99, 0.95)  # start mid-episode: the memories carried matter
    exp, finished = collector.collect(8, 0.99, 0.95)
    envs.close()
    assert finished and float(exp.keep.min()) == 0.0
    starts = torch.tensor([0, 4] * 3)
    procs = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        out = window_outputs(agent, exp, starts, procs, recurrence=4)
    steps = torch.stack([starts + i for i in range(4)]).reshape(-1)
    rows = (steps, procs.repeat(4))
    log_probs = torch.log_softmax(out.logits, -1).gather(1, exp.actions[rows].unsqueeze(1))[:, 0]
    torch.testing.assert_close(log_probs, exp.log_probs[rows], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.values, exp.values[rows], atol=1e-5, rtol=0)
    assert (out.missions is not None) == (decoder == "mission")
    if out.missions is not None:  # each step's own mission, for its thought decoder
        targets = torch.tensor([vocab.encode_thought("explore unseen area")] * len(steps))
        loss = thought_loss(agent, out.upper_h, out.upper_c, targets, out.missions)
        words = exp.missions[rows]
        for row in (0, 5, 23):
            alone = agent.encode_missions(words[row:row + 1, :int((words[row] != 0).sum())])
            logits = agent.thought_logits(out.upper_h[row:row + 1], out.upper_c[row:row + 1],
                                          targets[row:row + 1], alone)
            own = thought_loss(agent, out.upper_h[row:row + 1], out.upper_c[row:row + 1],
                               targets[row:row + 1], out.missions.index([row]))
            nll = torch.nn.functional.cross_entropy(logits[0], targets[row, 1:]).item()
            assert own.item() == pytest.approx(nll, rel=1e-4)
        assert torch.isfinite(loss)


def test_environment_state_survives_a_pickle_with_its_bot():
    env = make_episodes(ENV, [5, 6, 7], 1, 3, with_bot=True)[0]
    env.reset()
    for action in (0, 2, 1):
        env.step(action)
    copy = pickle.loads(pickle.dumps(env))
    for action in (2, 2, 0, 1, 2):
        a, b = env.step(action), copy.step(action)
        assert (a.obs.image == b.obs.image).all() and a.obs.bot_thought == b.obs.bot_thought
        assert (a.reward, a.done, a.episode) == (b.reward, b.done, b.episode)


@pytest.fixture
def run_root(tmp_path):
    agent, _ = _tiny_agent(True)
    vocab = Vocabulary(WORDS)
    save_checkpoint(tmp_path / "start.pt", agent, vocab)
    levels = {"demo": {25: {seed: {} for seed in range(100, 106)}}}
    (tmp_path / "levels").mkdir()
    with open(tmp_path / "levels" / "tiny.pkl", "wb") as handle:
        pickle.dump(levels, handle)
    return tmp_path


def _argv(root, frames: int, name: str = "ft") -> list[str]:
    return ["--env", ENV, "--model", str(root / "start.pt"), "--rl-model", name,
            "--storage", str(root), "--testing-levels-path", "tiny", "--diff-type", "demo",
            "--diff", "25", "--eval-episodes", "2", "--eval-interval", "2", "--frames", str(frames),
            "--procs", "4", "--workers", "2", "--frames-per-proc", "8", "--recurrence", "4",
            "--batch-size", "16", "--ppo-epochs", "2", "--lr", "1e-3"]


def _rows(path):
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in ("seconds", "fps")}
                for row in csv.DictReader(handle)]


def test_script_fine_tunes_and_resumes_after_a_kill_exactly(run_root, monkeypatch):
    summary = train_rl.main(_argv(run_root, 96))  # 3 updates of 32 frames
    run_dir = run_root / "models" / "ft"
    rows = _rows(run_dir / "log.csv")
    assert [row["update"] for row in rows] == ["0", "1", "2", "3"]
    assert rows[0]["eval/success_rate"] != "" and rows[2]["eval/success_rate"] != ""
    assert rows[1]["entropy"] != "" and summary.frames == 96
    finished = load_checkpoint(run_dir / "last.pt")
    assert load_checkpoint(run_dir / "best.pt").agent.config == finished.agent.config

    original_save = trainer_module.RLTrainer.save

    def save_then_die(self, path):
        original_save(self, path)
        if path.name == "last.pt" and self.update == 1:
            raise KeyboardInterrupt  # killed right after update 1 was saved
    monkeypatch.setattr(trainer_module.RLTrainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_rl.main(_argv(run_root, 96, "killed"))
    monkeypatch.setattr(trainer_module.RLTrainer, "save", original_save)
    train_rl.main(_argv(run_root, 96, "killed"))
    resumed_dir = run_root / "models" / "killed"
    resumed = load_checkpoint(resumed_dir / "last.pt")
    for key, value in finished.agent.state_dict().items():
        assert torch.equal(value, resumed.agent.state_dict()[key]), key
    assert _rows(resumed_dir / "log.csv") == rows


def test_bad_settings_are_one_line_errors(run_root, capsys):
    argv = _argv(run_root, 32)
    assert run(train_rl.main, argv[:-2] + ["--recurrence", "3"]) == 2
    assert "--recurrence 3 must divide" in capsys.readouterr().err
    assert run(train_rl.main, argv + ["--eval-episodes", "6"]) == 2  # all of a 6-seed bin
    assert "too few to hold out" in capsys.readouterr().err
    missing_bin = [a if a != "25" else "75" for a in argv]
    assert run(train_rl.main, missing_bin) == 2
    assert "has no demo bin '75'" in capsys.readouterr().err
    assert run(train_rl.main, argv + ["--arch", "tc"]) == 2
    assert not (run_root / "models" / "ft").exists()


def test_from_scratch_takes_its_vocabulary_from_demos(tmp_path):
    write_demos(tmp_path, count=4, valid_count=1)
    summary = train_rl.main(["--env", ENV, "--arch", "bc", "--demos", "synth", "--storage",
                             str(tmp_path), "--frames", "32", "--procs", "4", "--workers", "1",
                             "--frames-per-proc", "8", "--recurrence", "4", "--batch-size", "16",
                             "--eval-episodes", "1", "--memory-dim", "16", "--instr-dim", "8",
                             "--image-dim", "8"])
    assert summary.run_dir.name == "bc_rl_seed1" and summary.updates == 1
    assert not load_checkpoint(summary.run_dir / "best.pt").agent.config.use_thoughts


def test_rl_seed_ranges_lie_between_the_others():
    from babyai.common import seeds
    assert seeds.IN_DISTRIBUTION_START + 10**11 <= seeds.RL_TRAIN_START
    assert seeds.RL_TRAIN_START + seeds.RL_TRAIN_SPAN <= seeds.RL_EVAL_START


def test_finetune_picks_the_hardest_failed_bin_per_kind_and_draws_curves(tmp_path):
    from babyai.commands import finetune
    vocab = Vocabulary(WORDS)
    for use_thoughts, name in ((True, "tc"), (False, "bc")):
        agent, _ = _tiny_agent(use_thoughts)
        save_checkpoint(tmp_path / f"{name}.pt", agent, vocab)
    levels = {"demo": {25: {s: {} for s in range(100, 105)}, 75: {s: {} for s in range(200, 205)},
                       "425+": {s: {} for s in range(300, 302)}},
              "mission": {3: {s: {} for s in range(400, 405)}}}
    (tmp_path / "levels").mkdir()
    with open(tmp_path / "levels" / "ft.pkl", "wb") as handle:
        pickle.dump(levels, handle)
    results = tmp_path / "results.csv"
    rows = [("tc", "demo", "25", 0.1), ("bc", "demo", "25", 0.2), ("tc", "demo", "75", 0.0),
            ("bc", "demo", "75", 0.5), ("tc", "demo", "425+", 0.0), ("bc", "demo", "425+", 0.0),
            ("tc", "mission", "3", 0.9), ("bc", "mission", "3", 0.0)]
    results.write_text("model,diff_type,diff,success_rate,episodes\n"
                       + "".join(f"{m},{k},{d},{s},10\n" for m, k, d, s in rows))
    # 75: BC above 30%; 425+: too few seeds; mission 3: TC above 30% -> only demo 25
    path = finetune.main(["--env", ENV, "--tc-model", str(tmp_path / "tc.pt"), "--bc-model",
                          str(tmp_path / "bc.pt"), "--ood-results", str(results), "--levels", "ft",
                          "--out", str(tmp_path / "out"), "--storage", str(tmp_path),
                          "--frames", "32", "--seeds", "1", "--eval-episodes", "2",
                          "--min-train-seeds", "2", "--procs", "4", "--frames-per-proc", "8",
                          "--recurrence", "4", "--batch-size", "16", "--workers", "1"])
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["diff_type"], r["diff"], r["agent"]) for r in table] == [
        ("demo", "25", "tc"), ("demo", "25", "bc")]
    assert (tmp_path / "out" / "finetune.png").is_file()
    assert (tmp_path / "out" / "runs" / "finetune_tc_demo25_s1" / "best.pt").is_file()
    from babyai.pipeline.report import finetune_section
    section = finetune_section(tmp_path / "out")
    assert "| demo 25 | TC | 1 | 32 |" in "\n".join(section)
    assert section[-1] == "![fine-tuning curves](finetune/finetune.png)"


def test_pipeline_finetunes_only_when_asked(tmp_path):
    from babyai.pipeline.config import Paths, PipelineConfig
    from babyai.pipeline.pipeline import build_stages
    paths = Paths(tmp_path, "q")
    assert "finetune" not in [stage.name for stage in build_stages(PipelineConfig(), paths)]
    stages = build_stages(PipelineConfig(finetune=True, finetune_frames=1280), paths)
    assert [stage.name for stage in stages][-2:] == ["finetune_levels", "finetune"]
    assert "1280" in stages[-1].args and stages[-1].module == "babyai.commands.finetune"

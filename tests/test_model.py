"""The agent: shapes, padding, decoding, memory resets and checkpoints."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from babyai.agent.checkpoint import load_checkpoint, save_checkpoint
from babyai.common.errors import UserError
from babyai.agent.model import (THOUGHT_DECODERS, Memory, ModelConfig, build_agent,
                                eval_with_rnn_gradients)
from babyai.data.vocab import BOS, EOS, PAD, Vocabulary

VOCAB = Vocabulary.build(["pick up the red ball then open a blue door",
                          "pickup red ball to complete pickup mission", "explore unseen area"])


def small_agent(use_thoughts: bool = True, seed: int = 0, decoder: str = "memory"):
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=len(VOCAB), image_dim=16, memory_dim=32, instr_dim=16,
                         use_thoughts=use_thoughts, thought_decoder=decoder)
    return build_agent(config).eval()


def batch(pad_extra: int = 0):
    torch.manual_seed(1)
    images = torch.randint(0, 11, (3, 7, 7, 3))
    missions = [VOCAB.encode(m) for m in ["pick up the red ball", "open a blue door",
                                          "pick up the red ball then open a blue door"]]
    thoughts = [VOCAB.encode_thought(t) for t in ["pickup red ball to complete pickup mission",
                                                  "explore unseen area", "explore unseen area"]]

    def pad(rows):
        width = max(map(len, rows)) + pad_extra
        return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])

    return images, pad(missions), pad(thoughts)


@pytest.mark.parametrize("use_thoughts", [True, False])
def test_output_shapes(use_thoughts):
    agent = small_agent(use_thoughts)
    images, missions, thoughts = batch()
    out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
    assert out.action_logits.shape == (3, 7) and out.value.shape == (3,)
    assert all(field.shape == (3, 32) for field in out.memory)
    if use_thoughts:
        assert out.thought_logits.shape == (3, thoughts.shape[1] - 1, len(VOCAB))
        assert out.thought_tokens is None  # teacher-forced: nothing generated
    else:
        assert out.thought_logits is None and out.thought_tokens is None


@pytest.mark.parametrize("decoder", THOUGHT_DECODERS)
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_padding_never_changes_outputs(teacher_forcing, decoder):
    agent = small_agent(decoder=decoder)
    images, missions, thoughts = batch()
    _, missions_padded, thoughts_padded = batch(pad_extra=4)
    with torch.no_grad():
        a = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts, teacher_forcing)
        b = agent(images, agent.encode_missions(missions_padded), agent.initial_memory(3),
                  thoughts_padded, teacher_forcing)
    torch.testing.assert_close(a.action_logits, b.action_logits)
    torch.testing.assert_close(a.memory.history_h, b.memory.history_h)
    width = thoughts.shape[1] - 1
    torch.testing.assert_close(a.thought_logits, b.thought_logits[:, :width])


def test_greedy_thoughts_never_emit_pad_or_start_and_stop_at_end():
    agent = small_agent()
    images, missions, _ = batch()
    with torch.no_grad():
        out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), None, False)
    tokens = out.thought_tokens
    assert tokens.shape[0] == 3 and tokens.shape[1] <= 15
    for row in tokens.tolist():
        words = row[: row.index(EOS) + 1] if EOS in row else row
        assert BOS not in words and PAD not in words
        assert all(token == PAD for token in row[len(words):])


@pytest.mark.parametrize("decoder", THOUGHT_DECODERS)
def test_batched_decoding_matches_single(decoder):
    agent = small_agent(decoder=decoder)
    images, missions, _ = batch()
    with torch.no_grad():
        together = agent(images, agent.encode_missions(missions), agent.initial_memory(3), None, False)
        for i in range(3):
            alone = agent(images[i:i + 1], agent.encode_missions(missions[i:i + 1, :(missions[i] != PAD).sum()]),
                          agent.initial_memory(1), None, False)
            assert VOCAB.decode(alone.thought_tokens[0]) == VOCAB.decode(together.thought_tokens[i])
            torch.testing.assert_close(alone.action_logits[0], together.action_logits[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("decoder", THOUGHT_DECODERS)
def test_greedy_thought_is_the_argmax_of_the_teacher_forced_logits_on_itself(decoder):
    """Generation and training score words the same way: fed its own greedy thought, the
    teacher-forced decoder puts its maximum on each next word of it."""
    agent = small_agent(decoder=decoder, seed=3)
    images, missions, _ = batch()
    encoded, memory = agent.encode_missions(missions), agent.initial_memory(3)
    with torch.no_grad():
        free = agent(images, encoded, memory, None, False)
        own = torch.cat([torch.full((3, 1), BOS), free.thought_tokens], dim=1)
        logits = agent.thought_logits(free.memory.upper_h, free.memory.upper_c, own, encoded)
    logits[..., PAD] = logits[..., BOS] = float("-inf")
    predicted = logits.argmax(dim=-1)
    for row in range(3):
        words = own[row, 1:]
        length = int((words != PAD).sum())
        assert predicted[row, :length].tolist() == words[:length].tolist()


def test_only_the_mission_decoder_reads_the_mission_while_it_writes():
    """With the upper memory held fixed, another mission changes the words the "mission"
    decoder scores and nothing in the "memory" decoder (the paper's reads the memory only)."""
    images, missions, thoughts = batch()
    other = missions.roll(1, dims=0)
    for decoder, changes in (("memory", False), ("mission", True)):
        agent = small_agent(decoder=decoder)
        with torch.no_grad():
            out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
            state = (out.memory.upper_h, out.memory.upper_c)
            same = agent.thought_logits(*state, thoughts, agent.encode_missions(missions))
            moved = agent.thought_logits(*state, thoughts, agent.encode_missions(other))
        torch.testing.assert_close(same, out.thought_logits)
        assert (not torch.allclose(same, moved)) == changes, decoder


def test_unknown_thought_decoder_is_a_user_error():
    with pytest.raises(UserError, match="thought-decoder"):
        ModelConfig(vocab_size=10, thought_decoder="transformer")


def test_own_history_reads_generated_thoughts_while_the_lower_level_is_forced():
    agent = small_agent()
    images, missions, thoughts = batch()
    encoded, memory = agent.encode_missions(missions), agent.initial_memory(3)
    with torch.no_grad():
        forced = agent(images, encoded, memory, thoughts, True)
        free = agent(images, encoded, memory, None, False)
        own = agent(images, encoded, memory, thoughts, True, history_thought="own")
        mixed = agent(images, encoded, memory, thoughts, torch.tensor([True, False, True]),
                      history_thought="own")
    # the lower level still reads the demonstrator's thought ...
    torch.testing.assert_close(own.action_logits, forced.action_logits)
    torch.testing.assert_close(mixed.action_logits[[0, 2]], forced.action_logits[[0, 2]])
    torch.testing.assert_close(mixed.action_logits[1], free.action_logits[1])
    # ... while the history reads what the agent itself thought, as at test time
    torch.testing.assert_close(own.memory.history_h, free.memory.history_h)
    torch.testing.assert_close(mixed.memory.history_h, free.memory.history_h)
    assert not torch.allclose(forced.memory.history_h, free.memory.history_h)
    with pytest.raises(ValueError, match="history_thought"):
        agent(images, encoded, memory, thoughts, True, history_thought="demo")


def test_memory_mask_resets_only_selected_rows():
    memory = Memory(*(torch.ones(3, 4) for _ in Memory._fields))
    masked = memory.mask(torch.tensor([1.0, 0.0, 1.0]))
    assert all(field[1].abs().sum() == 0 and field[0].sum() == 4 for field in masked)


def test_gradients_reach_both_levels():
    agent = small_agent().train()
    images, missions, thoughts = batch()
    out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
    (out.action_logits.sum() + out.thought_logits.sum()).backward()
    assert agent.thinker.decoder.weight_ih_l0.grad.abs().sum() > 0
    assert agent.policy.actor[0].weight.grad.abs().sum() > 0
    assert agent.thought_encoder.gru.weight_ih_l0.grad.abs().sum() > 0


def test_unknown_instr_arch_is_a_user_error():
    with pytest.raises(UserError, match="instr-arch"):
        ModelConfig(vocab_size=10, instr_arch="gru")


def test_checkpoint_round_trip_in_a_fresh_process(tmp_path):
    agent = small_agent()
    path = tmp_path / "agent.pt"
    save_checkpoint(path, agent, VOCAB, extra={"epoch": 3})
    images, missions, thoughts = batch()
    with torch.no_grad():
        expected = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
    torch.save((images, missions, thoughts, expected.action_logits), tmp_path / "io.pt")
    script = f"""
import torch
from babyai.agent.checkpoint import load_checkpoint
agent, vocab, extra = load_checkpoint({str(path)!r})
images, missions, thoughts, expected = torch.load({str(tmp_path / 'io.pt')!r})
with torch.no_grad():
    out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
torch.testing.assert_close(out.action_logits, expected)
assert extra == {{"epoch": 3}} and len(vocab) == {len(VOCAB)}
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_incompatible_or_corrupt_checkpoints_are_user_errors(tmp_path):
    path = tmp_path / "agent.pt"
    save_checkpoint(path, small_agent(), VOCAB)
    payload = torch.load(path, weights_only=False)
    payload["config"]["memory_dim"] = 64
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(UserError, match="do not match"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_window_batched_thought_logits_equal_per_step():
    agent = small_agent()
    images, missions, thoughts = batch()
    with torch.no_grad():
        out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
        later = agent.thought_logits(out.memory.upper_h, out.memory.upper_c, thoughts)
    torch.testing.assert_close(out.thought_logits, later)


def test_eval_with_rnn_gradients_keeps_eval_outputs_and_only_the_rnns_in_training_mode():
    """PPO's update runs in evaluation mode with gradients; on a GPU cuDNN needs its RNNs in
    training mode for that, which must not change what the agent computes."""
    agent = small_agent()
    images, missions, thoughts = batch()

    def outputs():
        torch.manual_seed(2)
        out = agent(images, agent.encode_missions(missions), agent.initial_memory(3), thoughts)
        return out.action_logits, out.thought_logits

    expected = outputs()
    eval_with_rnn_gradients(agent)
    rnns = [m for m in agent.modules() if isinstance(m, torch.nn.RNNBase)]
    others = [m for m in agent.modules()
              if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.Dropout))]
    assert len(rnns) >= 2 and all(m.training for m in rnns)  # the mission GRU, the decoder
    assert others and not any(m.training for m in others) and not agent.training
    for got, want in zip(outputs(), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)

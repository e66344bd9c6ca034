"""The imitation loss against a hand computation."""
from __future__ import annotations

import math

import pytest
import torch

from babyai.data.dataset import NO_ACTION
from babyai.training.loss import imitation_loss, thought_nll
from babyai.data.vocab import BOS, EOS, PAD


def _log_softmax(row):
    top = max(row)
    norm = top + math.log(sum(math.exp(x - top) for x in row))
    return [x - norm for x in row]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_loss_matches_hand_computation_and_ignores_padding(reduction):
    action_logits = [[1.0, 0.0, -1.0], [0.5, 0.5, 2.0], [3.0, -2.0, 0.0]]
    actions = [0, 2, 1]
    valid = [True, True, False]  # the third step is padding
    vocab = 5
    # thought targets: <s> 4 </s> and <s> 4 4 </s>; logits predict targets[:, 1:]
    targets = [[BOS, 4, EOS, PAD], [BOS, 4, 4, EOS], [BOS, 4, EOS, PAD]]
    thought_logits = torch.randn(3, 3, vocab, generator=torch.Generator().manual_seed(0))
    entropy_coef, sg_coef = 0.1, 2.0

    action_nll, entropy, thought_nll = [], [], []
    for step in range(2):
        logp = _log_softmax(action_logits[step])
        action_nll.append(-logp[actions[step]])
        entropy.append(-sum(math.exp(lp) * lp for lp in logp))
        token_nll = [-_log_softmax(thought_logits[step, i].tolist())[targets[step][i + 1]]
                     for i in range(3) if targets[step][i + 1] != PAD]
        # The original's maskedNll sums a thought's token NLLs; "mean" divides by its tokens.
        thought_nll.append(sum(token_nll) / (len(token_nll) if reduction == "mean" else 1))
    expect_action = sum(action_nll) / 2
    expect_entropy = sum(entropy) / 2
    expect_thought = sum(thought_nll) / 2
    expect_total = expect_action - entropy_coef * expect_entropy + sg_coef * expect_thought

    parts = imitation_loss(torch.tensor(action_logits), torch.tensor(actions), thought_logits,
                           torch.tensor(targets), torch.tensor(valid),
                           entropy_coef=entropy_coef, sg_coef=sg_coef, thought_reduction=reduction)
    assert parts.action.item() == pytest.approx(expect_action, rel=1e-5)
    assert parts.entropy.item() == pytest.approx(expect_entropy, rel=1e-5)
    assert parts.thought.item() == pytest.approx(expect_thought, rel=1e-5)
    assert parts.total.item() == pytest.approx(expect_total, rel=1e-5)
    assert parts.steps == 2 and int(parts.action_correct) == 2

    # padding never changes the loss: garbage on padded steps and padded tokens is ignored
    garbage_logits = thought_logits.clone()
    garbage_logits[0, 2] = 100.0
    garbage_logits[2] = -50.0
    garbage_actions = torch.tensor(action_logits)
    garbage_actions[2] = torch.tensor([0.0, 90.0, 0.0])
    again = imitation_loss(garbage_actions, torch.tensor(actions), garbage_logits,
                           torch.tensor(targets), torch.tensor(valid),
                           entropy_coef=entropy_coef, sg_coef=sg_coef, thought_reduction=reduction)
    assert again.total.item() == pytest.approx(parts.total.item(), rel=1e-6)


def test_denominator_splits_a_mean_over_windows():
    logits = torch.randn(6, 7, generator=torch.Generator().manual_seed(1))
    actions = torch.tensor([0, 1, 2, 3, 4, 5])
    whole = imitation_loss(logits, actions).total
    split = (imitation_loss(logits[:4], actions[:4], denominator=6).total
             + imitation_loss(logits[4:], actions[4:], denominator=6).total)
    assert split.item() == pytest.approx(whole.item(), rel=1e-6)


def test_behavioural_cloning_has_no_thought_term():
    parts = imitation_loss(torch.zeros(2, 7), torch.tensor([1, 2]), entropy_coef=0.0)
    assert parts.thought.item() == 0.0
    assert parts.total.item() == pytest.approx(math.log(7), rel=1e-6)


def test_summed_thought_loss_is_the_mean_times_the_thought_length():
    """Default reduction: per step, the sum of the token NLLs (words + end token)."""
    targets = torch.tensor([[BOS, 4, 4, 4, EOS, PAD], [BOS, 4, EOS, PAD, PAD, PAD]])
    logits = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(3))
    per_step_sum = [thought_nll(logits[i:i + 1], targets[i:i + 1]).item() for i in range(2)]
    per_step_mean = [thought_nll(logits[i:i + 1], targets[i:i + 1], reduction="mean").item()
                     for i in range(2)]
    assert per_step_sum[0] == pytest.approx(4 * per_step_mean[0], rel=1e-6)
    assert per_step_sum[1] == pytest.approx(2 * per_step_mean[1], rel=1e-6)
    with pytest.raises(ValueError):
        thought_nll(logits, targets, reduction="max")


def test_steps_without_an_action_label_train_only_their_thought():
    torch.manual_seed(0)
    logits, thought_logits = torch.randn(4, 7), torch.randn(4, 3, 9)
    targets = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0], [2, 4, 3, 0], [2, 8, 8, 3]])
    actions = torch.tensor([1, NO_ACTION, 4, NO_ACTION])
    parts = imitation_loss(logits, actions, thought_logits, targets, entropy_coef=0.0,
                           sg_coef=1.0)
    log_probs = torch.log_softmax(logits, dim=-1)
    assert parts.action.item() == pytest.approx(-(log_probs[0, 1] + log_probs[2, 4]).item() / 4)
    full = imitation_loss(logits, torch.tensor([1, 0, 4, 0]), thought_logits, targets)
    assert parts.thought.item() == pytest.approx(full.thought.item())  # every thought counts
    assert parts.steps == 4 and int(parts.action_correct) <= 2

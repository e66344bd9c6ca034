"""Teacher-forcing and learning-rate schedules."""
from __future__ import annotations

import numpy as np
import pytest

from babyai.training.schedules import learning_rate, teacher_forcing_draws, teacher_forcing_prob


def test_teacher_forcing_is_one_until_stop_tf_then_linear_to_zero_at_the_last_epoch():
    probs = [teacher_forcing_prob(e, epochs=15, stop_tf=10) for e in range(15)]
    assert probs[:11] == [1.0] * 11
    assert probs[10:] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert all(teacher_forcing_prob(e, 15, None) == 1.0 for e in range(15))
    assert teacher_forcing_prob(3, epochs=4, stop_tf=10) == 1.0  # never reached: stays 1


def test_teacher_forcing_draws_are_per_batch_and_reproducible():
    draws = teacher_forcing_draws(seed=0, epoch=3, num_batches=4000, prob=0.25)
    assert draws.mean() == pytest.approx(0.25, abs=0.03)
    np.testing.assert_array_equal(draws, teacher_forcing_draws(0, 3, 4000, 0.25))
    assert not np.array_equal(draws, teacher_forcing_draws(0, 4, 4000, 0.25))
    assert teacher_forcing_draws(0, 0, 10, 1.0).all() and not teacher_forcing_draws(0, 0, 10, 0.0).any()


def test_warm_start_ramps_over_five_epochs():
    rates = [learning_rate(e, 5e-4, warm_start=True) for e in range(7)]
    assert rates == pytest.approx([1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 5e-4, 5e-4])
    assert learning_rate(0, 5e-4) == 5e-4


def test_late_halving_after_40_epochs_past_stop_tf_or_from_120():
    # the paper's run: stop_tf 10 -> halved from epoch 50 on, once
    assert learning_rate(49, 5e-4, stop_tf=10) == 5e-4
    assert learning_rate(50, 5e-4, stop_tf=10) == 2.5e-4
    assert learning_rate(159, 5e-4, stop_tf=10) == 2.5e-4
    # without stop_tf, or with a late one, epoch 120 decides
    assert learning_rate(119, 5e-4) == 5e-4 and learning_rate(120, 5e-4) == 2.5e-4
    assert learning_rate(120, 5e-4, stop_tf=100) == 2.5e-4
    assert learning_rate(200, 5e-4, halve_at=None, halve_after_tf=None) == 5e-4


def test_a_floor_keeps_teacher_forcing_on_late_batches():
    probs = [teacher_forcing_prob(e, epochs=6, stop_tf=2, floor=0.5) for e in range(6)]
    assert probs == [1.0, 1.0, 1.0, pytest.approx(2 / 3), 0.5, 0.5]
    assert teacher_forcing_prob(5, epochs=6, stop_tf=2) == 0.0  # no floor: the paper's 0

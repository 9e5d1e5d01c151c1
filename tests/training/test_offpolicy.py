"""Building blocks of spinrl.training.offpolicy: the update schedule and the per-update statistics."""

import numpy as np
import pytest
import torch

from spinrl.training.offpolicy import UpdateStats, update_rounds_due


def rounds_per_env_step(num_envs: int, update_every: int, env_steps: int) -> list[int]:
    """The rounds due after each step of ``num_envs`` copies, until t reaches ``env_steps``."""
    return [update_rounds_due(t, num_envs, update_every) for t in range(num_envs, env_steps + 1, num_envs)]


def test_one_copy_updates_when_t_is_a_multiple_of_update_every():
    rounds = rounds_per_env_step(1, 5, 23)
    assert rounds == [1 if t % 5 == 0 else 0 for t in range(1, 24)]


@pytest.mark.parametrize(
    "num_envs, update_every",
    [(1, 50), (2, 50), (3, 50), (4, 6), (7, 3), (8, 5), (10, 5), (16, 1)],
)
def test_rounds_keep_one_gradient_step_per_env_step_for_any_number_of_copies(num_envs, update_every):
    """Copies that do not divide update_every, and more copies than update_every (several rounds due
    in one step): after t env steps, t // update_every rounds in all, each due in the step that passed
    its multiple of update_every."""
    rounds = rounds_per_env_step(num_envs, update_every, 600)
    for k in range(len(rounds)):
        t = (k + 1) * num_envs
        assert sum(rounds[: k + 1]) == t // update_every
        assert rounds[k] == len([m for m in range(t - num_envs + 1, t + 1) if m % update_every == 0])
    if num_envs > update_every:
        assert all(r >= 1 for r in rounds) and max(rounds) >= num_envs // update_every


def test_update_stats_log_each_value_under_the_name_it_was_added_with():
    class Logger:
        def __init__(self):
            self.stored = {}

        def store(self, **kw):
            for k, v in kw.items():
                self.stored.setdefault(k, []).append(v)

    stats, logger = UpdateStats(), Logger()
    q = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # two Q-functions, a batch of 3
    for step in range(2):
        stats.add(LossQ=torch.tensor(0.5 * step), Q1Vals=q[0] + step, Q2Vals=q[1] + step)
    stats.flush(logger, epoch=0)
    assert set(logger.stored) == {"LossQ", "Q1Vals", "Q2Vals"}  # no column named or renamed elsewhere
    np.testing.assert_array_equal(logger.stored["Q1Vals"][0], [[1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(logger.stored["Q2Vals"][0], [[4, 5, 6], [5, 6, 7]])
    np.testing.assert_array_equal(logger.stored["LossQ"][0], [0.0, 0.5])
    assert stats.values == {}  # flushed: the next epoch starts empty

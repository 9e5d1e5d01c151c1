"""Learning tests: each off-policy algorithm learns on a small budget with a fixed seed.

Small networks (64x64) keep these fast on a CPU; the algorithms' defaults are Spinning Up's.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinrl import ddpg, dqn, sac, td3
from spinrl.record.logger import read_progress

PENDULUM = dict(
    steps_per_epoch=2000, epochs=4, start_steps=1000, update_after=1000, num_test_episodes=3,
    ac_kwargs=dict(hidden_sizes=(64, 64)), seed=0, device="cpu",
)  # fmt: skip


def _test_returns(fn, env_id: str, tmp_path, **kwargs) -> np.ndarray:
    fn(env_id, logger_kwargs=dict(output_dir=str(tmp_path / "run"), quiet=True), **kwargs)
    return read_progress(tmp_path / "run/progress.txt")["AverageTestEpRet"]


def test_sac_solves_pendulum_within_8k_steps(tmp_path):
    returns = _test_returns(sac, "Pendulum-v1", tmp_path, **PENDULUM)
    assert returns[-1] >= -400, returns


@pytest.mark.parametrize("fn", [td3, ddpg], ids=["td3", "ddpg"])
def test_td3_and_ddpg_improve_clearly_on_pendulum(fn, tmp_path):
    returns = _test_returns(fn, "Pendulum-v1", tmp_path, **PENDULUM)
    # A random policy scores about -1200 to -1500; 8k steps take a deterministic policy far beyond.
    assert returns[-1] >= -700 and returns[-1] - returns[0] >= 400, returns


def test_dqn_learns_cartpole(tmp_path):
    returns = _test_returns(
        dqn, "CartPole-v1", tmp_path, steps_per_epoch=1500, epochs=3, start_steps=1000, update_after=1000,
        epsilon_decay_steps=3000, num_test_episodes=3, ac_kwargs=dict(hidden_sizes=(64, 64)), device="cpu",
    )  # fmt: skip
    assert returns.max() >= 150, returns

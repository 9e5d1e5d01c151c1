"""Learning tests: each on-policy algorithm really learns CartPole on a small budget (fixed seeds)."""

import numpy as np
import pytest

from spinrl.algos.ppo import ppo
from spinrl.algos.trpo import trpo
from spinrl.algos.vpg import vpg
from spinrl.record.logger import read_progress


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("SPINRL_NUM_THREADS", "1")


def _returns(out):
    return read_progress(out / "progress.txt")["AverageEpRet"]


def test_ppo_reaches_400_on_cartpole_within_60k_steps(tmp_path):
    ppo(
        "CartPole-v1",
        seed=0,
        steps_per_epoch=4000,
        epochs=15,
        pi_lr=1e-3,
        num_envs=4,
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    rets = _returns(tmp_path)
    assert len(rets) == 15
    assert rets.max() >= 400, rets  # measured: 409 after 40k steps, 500 after 48k


def test_vpg_improves_on_cartpole(tmp_path):
    vpg(
        "CartPole-v1",
        seed=0,
        steps_per_epoch=2000,
        epochs=15,
        pi_lr=1e-2,
        num_envs=4,
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    rets = _returns(tmp_path)
    # Random play scores about 22; measured here: a peak of 436, the last 5 epochs averaging ~310.
    assert rets[-5:].mean() >= 100 and rets.max() >= 150, rets


def test_trpo_improves_on_cartpole(tmp_path):
    trpo(
        "CartPole-v1",
        seed=0,
        steps_per_epoch=2000,
        epochs=15,
        delta=0.02,
        num_envs=4,
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    rets = _returns(tmp_path)
    assert rets[-5:].mean() >= 150 and rets.max() >= 250, rets  # measured: last 5 ~490


def test_npg_runs_and_improves(tmp_path):
    trpo(
        "CartPole-v1",
        seed=0,
        steps_per_epoch=2000,
        epochs=6,
        delta=0.02,
        num_envs=4,
        algo="npg",
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    rets = _returns(tmp_path)
    assert rets[-1] > 2 * rets[0], rets


def test_gaussian_policy_on_pendulum_runs(tmp_path):
    """Box actions: the diagonal Gaussian path, action clipping, and truncation at the time limit."""
    ppo(
        "Pendulum-v1",
        seed=0,
        steps_per_epoch=800,
        epochs=2,
        train_pi_iters=5,
        train_v_iters=5,
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    cols = read_progress(tmp_path / "progress.txt")
    assert cols["EpLen"].tolist() == [200.0, 200.0]  # Pendulum only ends by its 200-step time limit
    assert np.all(np.isfinite(cols["LossPi"]))


def test_same_seed_same_progress(tmp_path):
    kw = dict(seed=7, steps_per_epoch=300, epochs=2, train_pi_iters=4, train_v_iters=4, num_envs=2)
    ppo("CartPole-v1", logger_kwargs=dict(output_dir=str(tmp_path / "a"), quiet=True), **kw)
    ppo("CartPole-v1", logger_kwargs=dict(output_dir=str(tmp_path / "b"), quiet=True), **kw)
    a, b = read_progress(tmp_path / "a/progress.txt"), read_progress(tmp_path / "b/progress.txt")
    for key in a:
        if key != "Time":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path):
    import gymnasium as gym

    from spinrl.common.checks import TrainingDiverged
    from spinrl.record.checkpoint import load_checkpoint

    steps = {"n": 0}

    # A finite reward so large that the returns overflow: the env's outputs pass spinrl's NaN check (a NaN
    # reward is refused at its step, see test_action_spaces.py), and the losses become infinite or NaN.
    class HugeRewardAfter600(gym.Wrapper):
        def step(self, action):
            obs, rew, terminated, truncated, info = self.env.step(action)
            steps["n"] += 1
            return obs, (3e38 if steps["n"] > 600 else rew), terminated, truncated, info

    with pytest.raises(TrainingDiverged, match="became (nan|inf) in epoch 2: training stopped"):
        ppo(
            lambda: HugeRewardAfter600(gym.make("CartPole-v1")),
            steps_per_epoch=300,
            epochs=5,
            save_freq=1,
            train_pi_iters=2,
            train_v_iters=2,
            logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
        )
    assert load_checkpoint(tmp_path)["counters"]["epoch"] == 2  # epochs 0 and 1 are safe
    assert read_progress(tmp_path / "progress.txt")["Epoch"].tolist() == [0, 1]

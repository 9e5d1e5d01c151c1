"""Learning from pixels: DQN and PPO on a few-pixel task, and the continuous-action algorithms on images.

The task (tests/image_envs.py, DotEnv): a 12x12 uint8 image with one bright dot, on the left or the
right; acting toward it earns 1 per step, 10 per episode; a random policy earns 5. The small encoder
keeps each run to seconds on a CPU.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from image_envs import DotEnv

from spinrl import ddpg, dqn, ppo, sac, td3, trpo, vpg
from spinrl.record.logger import read_progress
from spinrl.results.policy import load_policy

SMALL_ENCODER = dict(encoder="small", features_dim=32)


def _progress(fn, env_fn, tmp_path, **kwargs) -> dict:
    fn(
        env_fn,
        logger_kwargs=dict(output_dir=str(tmp_path / "run"), quiet=True),
        seed=0,
        device="cpu",
        **kwargs,
    )
    return read_progress(tmp_path / "run/progress.txt")


def test_dqn_learns_to_act_toward_the_dot(tmp_path):
    progress = _progress(
        dqn, DotEnv, tmp_path, ac_kwargs=SMALL_ENCODER, steps_per_epoch=300, epochs=2, start_steps=100,
        update_after=100, epsilon_decay_steps=400, num_test_episodes=5,
    )  # fmt: skip
    # The greedy policy scores 10 of 10 once it reads the dot's side; random play scores about 5.
    assert progress["AverageTestEpRet"][-1] >= 9, progress["AverageTestEpRet"]

    # The saved network, loaded back, takes the env's uint8 frames and still acts toward the dot.
    env, get_action, _ = load_policy(tmp_path / "run", env_fn=DotEnv)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.uint8 and obs.shape == (1, 12, 12)
    score = 0.0
    for _ in range(10):
        obs, rew, *_ = env.step(get_action(obs))
        score += rew
    assert score >= 9


def test_ppo_learns_to_act_toward_the_dot(tmp_path):
    progress = _progress(
        ppo, DotEnv, tmp_path, ac_kwargs=SMALL_ENCODER, steps_per_epoch=800, epochs=6, train_v_iters=10, pi_lr=1e-3,
    )  # fmt: skip
    returns = progress["AverageEpRet"]
    # 80 episodes per epoch: the mean of a random policy is 5 +- 0.2.
    assert returns[-1] >= 7 and returns[-1] - returns[0] >= 1.5, returns


@pytest.mark.parametrize("fn", [vpg, trpo], ids=["vpg", "trpo"])
def test_vpg_and_trpo_run_on_images(fn, tmp_path):
    progress = _progress(
        fn, DotEnv, tmp_path, ac_kwargs=SMALL_ENCODER, steps_per_epoch=200, epochs=2, train_v_iters=5
    )
    for key in ("LossPi", "LossV", "AverageEpRet"):
        assert np.all(np.isfinite(progress[key])), (key, progress[key])


@pytest.mark.parametrize("fn", [sac, td3, ddpg], ids=["sac", "td3", "ddpg"])
def test_continuous_action_algorithms_run_on_images(fn, tmp_path):
    progress = _progress(
        fn, lambda: DotEnv(continuous=True), tmp_path, ac_kwargs=dict(SMALL_ENCODER, hidden_sizes=(32,)),
        steps_per_epoch=300, epochs=1, start_steps=100, update_after=100, update_every=50, batch_size=32,
        num_test_episodes=2,
    )  # fmt: skip
    for key in ("LossQ", "LossPi", "AverageTestEpRet"):
        assert np.all(np.isfinite(progress[key])), (key, progress[key])


def test_dqn_on_stacked_frames_resumes_with_its_frame_buffer(tmp_path):
    def stacked_dots():
        return gym.wrappers.FrameStackObservation(DotEnv(channels=None), 4)

    kwargs = dict(
        ac_kwargs=SMALL_ENCODER, steps_per_epoch=150, start_steps=50, update_after=50, update_every=50,
        num_test_episodes=1, replay_size=1000, save_buffer=True, save_freq=1,
    )  # fmt: skip
    _progress(dqn, stacked_dots, tmp_path, epochs=1, **kwargs)
    state = torch.load(tmp_path / "run/checkpoint-1.pt", weights_only=True)["replay_buffer"]
    assert state["stack_size"] == 4 and state["obs"].shape[2:] == (12, 12)  # one frame per row
    progress = _progress(dqn, stacked_dots, tmp_path, epochs=2, resume=True, **kwargs)
    assert list(progress["Epoch"]) == [0, 1] and progress["TotalEnvInteracts"][-1] == 300

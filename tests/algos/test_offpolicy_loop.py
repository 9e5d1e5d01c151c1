"""The interaction loop of DDPG, TD3, SAC and DQN, run through the algorithms themselves: what gets
stored, how many updates happen, and that episodes and training ignore epoch ends and checkpoints."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from spinrl import ddpg, dqn, sac, td3
from spinrl.buffers.replay import ReplayBuffer
from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress

ASYMMETRIC = spaces.Box(
    low=np.array([0.0, -3.0], dtype=np.float32), high=np.array([1.0, 5.0], dtype=np.float32)
)
SMALL = dict(ac_kwargs=dict(hidden_sizes=(16,)), device="cpu", num_test_episodes=1)


def _quiet(path) -> dict:
    return dict(output_dir=str(path), quiet=True, tensorboard=False)


class ScriptedEnv(gym.Env):
    """Observation = [episode * 100 + step]. Episode 0 terminates after 3 steps; later episodes run
    into the 4-step time limit (truncated). Checks that every action is inside the env's bounds."""

    observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = ASYMMETRIC
    spec = None

    def __init__(self):
        self.episode, self.t = -1, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([100 * self.episode + self.t], dtype=np.float32)

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=np.float32)), action
        self.t += 1
        terminated = self.episode == 0 and self.t == 3
        return self._obs(), 1.0, terminated, False, {}


def test_terminal_vs_truncated_transitions_and_episodes_across_an_epoch_end(tmp_path):
    # Two epochs of 5 steps, all random actions, no updates; the saved buffer shows what was stored.
    out = tmp_path / "run"
    ddpg(ScriptedEnv, steps_per_epoch=5, epochs=2, start_steps=100, update_after=100, max_ep_len=4,
         replay_size=100, save_buffer=True, logger_kwargs=_quiet(out), **SMALL)  # fmt: skip
    buf = ReplayBuffer(1, (2,), 100)
    buf.load_state_dict(load_checkpoint(out)["replay_buffer"])
    assert buf.steps_stored == 10
    batch = buf.sample_batch(2000)
    got = {
        (o, o2, d)
        for o, o2, d in zip(*(batch[k][:, 0].tolist() for k in ("obs", "obs2")), batch["done"].tolist())
    }
    # Episode 0 terminates at step 3 (done = 1: no bootstrapping). Episode 1 runs across the epoch end
    # (steps 4 to 7) and is truncated by the time limit: done = 0 and obs2 is its real last
    # observation 104, not the reset one (200). Episode 2 is still running when the run ends; its last
    # transition keeps its s' (203) in the saved buffer.
    assert got == {
        (0, 1, 0.0), (1, 2, 0.0), (2, 3, 1.0),
        (100, 101, 0.0), (101, 102, 0.0), (102, 103, 0.0), (103, 104, 0.0),
        (200, 201, 0.0), (201, 202, 0.0), (202, 203, 0.0),
    }  # fmt: skip
    assert list(read_progress(out / "progress.txt")["EpLen"]) == [3, 4]  # the epoch end cut nothing
    assert batch["act"].abs().max() <= 1  # stored normalised; the env got them mapped onto its bounds


def test_many_env_copies_finish_episodes_longer_than_their_share_of_an_epoch(tmp_path):
    # 400 steps per epoch over 4 copies is 100 steps each, half a Pendulum episode: episodes must carry
    # over from one epoch to the next, or no episode would ever finish (AverageEpRet nan throughout).
    ddpg("Pendulum-v1", num_envs=4, steps_per_epoch=400, epochs=2, start_steps=100, update_after=100,
         logger_kwargs=_quiet(tmp_path / "run"), **SMALL)  # fmt: skip
    progress = read_progress(tmp_path / "run/progress.txt")
    assert math.isfinite(progress["AverageEpRet"][-1]) and progress["EpLen"][-1] == 200
    assert list(progress["TotalEnvInteracts"]) == [400, 800]


@pytest.mark.parametrize("num_envs", [1, 3, 4, 64])
def test_one_gradient_step_per_env_step_for_any_number_of_copies(tmp_path, monkeypatch, num_envs):
    samples = []
    real_sample = ReplayBuffer.sample_batch
    monkeypatch.setattr(
        ReplayBuffer, "sample_batch", lambda self, n: samples.append(n) or real_sample(self, n)
    )
    steps_per_epoch = 10 * num_envs if num_envs > 10 else 200
    ddpg("Pendulum-v1", num_envs=num_envs, steps_per_epoch=steps_per_epoch, epochs=1, start_steps=0,
         update_after=0, update_every=10, logger_kwargs=_quiet(tmp_path / "run"), **SMALL)  # fmt: skip
    t = (steps_per_epoch // num_envs) * num_envs
    # Every multiple of update_every that t passes brings update_every gradient steps.
    assert len(samples) == (t // 10) * 10
    assert t - 10 < len(samples) <= t


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_checkpoints_change_nothing_the_agent_experiences(tmp_path, algo):
    # Two runs that differ only in save_freq (and so in when checkpoints, with the replay buffer, are
    # written) log the same numbers. Two copies keep episodes running at every epoch end.
    fn = {"sac": sac, "td3": td3}[algo]
    rows = []
    for save_freq in (1, 3):
        out = tmp_path / f"every{save_freq}"
        fn("Pendulum-v1", steps_per_epoch=300, epochs=3, start_steps=100, update_after=100, num_envs=2,
           save_freq=save_freq, save_buffer=True, max_ep_len=200, logger_kwargs=_quiet(out), **SMALL)  # fmt: skip
        rows.append(read_progress(out / "progress.txt"))
    a, b = rows
    assert list(a["Epoch"]) == [0, 1, 2]
    for k in a:
        if k != "Time":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_dqn_loop_on_a_discrete_space_with_a_start(tmp_path):
    # Discrete(2, start=...) through a wrapper: ActionMap adds the start to the stored indices.
    class Shifted(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = spaces.Discrete(2, start=-1)

        def action(self, a):
            assert a in (-1, 0), a
            return int(a) + 1

    dqn(lambda: Shifted(gym.make("CartPole-v1")), steps_per_epoch=300, epochs=1, start_steps=100,
        update_after=100, save_buffer=True, logger_kwargs=_quiet(tmp_path / "run"), **SMALL)  # fmt: skip
    saved = load_checkpoint(tmp_path / "run")["replay_buffer"]
    stored = saved["act"][saved["valid"]]
    assert len(stored) > 250 and set(stored.tolist()) == {0, 1}  # indices, whatever the env's start
    progress = read_progress(tmp_path / "run/progress.txt")
    assert math.isfinite(progress["AverageEpRet"][-1]) and math.isfinite(progress["Epsilon"][-1])


@pytest.mark.parametrize("num_envs", [1, 4])
def test_dqn_steps_per_update_takes_one_gradient_step_per_that_many_env_steps(
    tmp_path, monkeypatch, num_envs
):
    samples = []
    real_sample = ReplayBuffer.sample_batch
    monkeypatch.setattr(
        ReplayBuffer, "sample_batch", lambda self, n: samples.append(n) or real_sample(self, n)
    )
    dqn("CartPole-v1", num_envs=num_envs, steps_per_epoch=400, epochs=1, start_steps=0, update_after=0,
        update_every=20, steps_per_update=4, logger_kwargs=_quiet(tmp_path / "run"), **SMALL)  # fmt: skip
    # 400 env steps in groups of 20, each group bringing 20 / 4 = 5 gradient steps (Nature DQN's ratio).
    assert len(samples) == 400 // 4


def test_dqn_refuses_an_update_every_that_steps_per_update_does_not_divide(tmp_path):
    from spinrl.common.errors import UserError

    with pytest.raises(UserError, match="update_every=50 is not a multiple of steps_per_update=4"):
        dqn(
            "CartPole-v1",
            update_every=50,
            steps_per_update=4,
            logger_kwargs=_quiet(tmp_path / "run"),
            **SMALL,
        )
    assert not (tmp_path / "run").exists()

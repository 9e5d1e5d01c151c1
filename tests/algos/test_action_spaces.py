"""What reaches the env from the agent: Discrete spaces with a ``start``, Box actions of any shape."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.algos.ppo import ppo
from spinrl.algos.trpo import trpo
from spinrl.algos.vpg import vpg
from spinrl.nets.actor_critic import MLPActorCritic


class OffsetActionsEnv(gym.Env):
    """Discrete(3, start=-1), and no check of the actions it is given: it records them instead, so a
    test sees exactly what the agent sent."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Discrete(3, start=-1)
    received: list = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        OffsetActionsEnv.received.append(int(action))
        return np.zeros(2, np.float32), 1.0, False, False, {}


@pytest.mark.parametrize("algo", [vpg, trpo, ppo])
def test_policy_gradient_algorithms_send_discrete_actions_with_the_space_start(algo, tmp_path):
    OffsetActionsEnv.received = []
    algo(
        OffsetActionsEnv,
        steps_per_epoch=200,
        epochs=1,
        max_ep_len=50,
        logger_kwargs=dict(output_dir=str(tmp_path / "run"), quiet=True),
    )
    assert len(OffsetActionsEnv.received) == 200
    assert set(OffsetActionsEnv.received) == {-1, 0, 1}


def test_actor_critic_act_returns_the_env_actions_of_a_discrete_space_with_start():
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (2,)), spaces.Discrete(3, start=-1))
    obs = torch.randn(500, 2)
    assert set(ac.act(obs).tolist()) == {-1, 0, 1}
    index = ac.pi.distribution(obs).probs.argmax(-1)
    assert torch.equal(ac.act(obs, deterministic=True), index - 1)


class GridActionsEnv(gym.Env):
    """Box actions of shape (2, 3) with bounds that differ per entry (and a scalar-action twin): it
    records the shapes it is given and whether each action lay within its bounds."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Box(
        np.arange(6, dtype=np.float32).reshape(2, 3) - 6, np.arange(6, dtype=np.float32).reshape(2, 3) + 1
    )
    received: list = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        GridActionsEnv.received.append(
            (np.shape(action), bool(self.action_space.contains(np.asarray(action, np.float32))))
        )
        return np.zeros(2, np.float32), 0.0, False, False, {}


class ScalarActionEnv(GridActionsEnv):
    action_space = spaces.Box(-2.0, 3.0, (), np.float32)


@pytest.mark.parametrize("env_cls", [GridActionsEnv, ScalarActionEnv])
@pytest.mark.parametrize("algo", ["ppo", "td3"])
def test_box_actions_of_any_shape_reach_the_env_in_their_shape_and_bounds(algo, env_cls, tmp_path):
    import spinrl

    GridActionsEnv.received = []
    extra = dict(start_steps=20, update_after=20, update_every=10, batch_size=8, num_test_episodes=1)
    getattr(spinrl, algo)(
        env_cls,
        steps_per_epoch=60,
        epochs=1,
        max_ep_len=30,
        logger_kwargs=dict(output_dir=str(tmp_path / "run"), quiet=True),
        **(extra if algo == "td3" else {}),
    )
    shape = env_cls.action_space.shape
    assert len(GridActionsEnv.received) >= 60
    assert all(s == shape and inside for s, inside in GridActionsEnv.received)


class NaNAtStepEnv(gym.Env):
    """Finite outputs until step 7 of each episode, which returns NaN in ``what``; records the actions."""

    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (2,), np.float32)
    what = "obs"
    actions: list = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        NaNAtStepEnv.actions.append(np.array(action))
        self.t += 1
        obs, rew = np.zeros(3, np.float32), 1.0
        if self.t == 7:
            if self.what == "obs":
                obs[1] = np.nan
            else:
                rew = float("inf")
        return obs, rew, False, False, {}


@pytest.mark.parametrize("what, expected", [
    ("obs", r"environment NaNAtStepEnv returned an observation with NaN or infinite entries \(1\) at step 7 "),
    ("rew", r"environment NaNAtStepEnv returned the reward inf at step 7 "),
])  # fmt: skip
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_nan_from_the_env_is_named_at_the_step_it_appears_before_any_nan_action(
    algo, what, expected, tmp_path
):
    import spinrl
    from spinrl.common.errors import UserError

    NaNAtStepEnv.what, NaNAtStepEnv.actions = what, []
    extra = dict(start_steps=3, update_after=3, update_every=2, batch_size=2, num_test_episodes=1)
    with pytest.raises(UserError, match=expected):
        getattr(spinrl, algo)(
            NaNAtStepEnv,
            steps_per_epoch=40,
            epochs=1,
            logger_kwargs=dict(output_dir=str(tmp_path / "run"), quiet=True),
            **(extra if algo == "sac" else {}),
        )
    assert len(NaNAtStepEnv.actions) == 7 and np.isfinite(NaNAtStepEnv.actions).all()

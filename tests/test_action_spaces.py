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
from spinrl.nets import MLPActorCritic


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

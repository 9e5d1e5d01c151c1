"""The NumPy acting path computes exactly what the torch actor-critic computes."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.fast_act import numpy_policy
from spinrl.nets import MLPActorCritic


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.Box(-2, 1, (2,))])
@pytest.mark.parametrize("activation", ["Tanh", "ReLU"])
def test_numpy_step_matches_torch_step(act_space, activation):
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (5,)), act_space, hidden_sizes=(16, 16), activation=activation)
    step = numpy_policy(ac, torch.device("cpu"))
    assert step is not None
    obs = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)

    torch.manual_seed(123)
    a_np, v_np, logp_np = step(obs)
    torch.manual_seed(123)  # same noise: the NumPy path draws it from torch's RNG
    a_t, v_t, logp_t = ac.step(torch.as_tensor(obs))
    np.testing.assert_allclose(a_np, a_t.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v_np, v_t.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logp_np, logp_t.numpy(), rtol=1e-4, atol=1e-5)


def test_falls_back_for_unknown_activation_or_custom_classes():
    ac = MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), activation="ELU")
    assert numpy_policy(ac, torch.device("cpu")) is None

    class Custom(MLPActorCritic):
        pass

    assert numpy_policy(Custom(spaces.Box(-1, 1, (3,)), spaces.Discrete(2)), torch.device("cpu")) is None

"""The NumPy acting path computes exactly what the torch actor-critic computes."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.nets.actor_critic import MLPActorCritic
from spinrl.nets.fast_act import numpy_policy


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.Discrete(2), spaces.Box(-2, 1, (2,))])
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


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.Box(-2, 1, (2,))])
def test_noise_drawn_ahead_for_known_calls_is_the_noise_drawn_per_call(act_space):
    """With num_calls, the step gives the same actions, values and log-probabilities, call by call,
    and leaves torch's generator where one draw per call leaves it, also when called more often."""
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (5,)), act_space, hidden_sizes=(16, 16))
    obs = np.random.default_rng(0).normal(size=(20, 2, 5)).astype(np.float32)
    runs = []
    for num_calls in (None, 15):
        step = numpy_policy(ac, torch.device("cpu"), num_calls=num_calls)
        torch.manual_seed(7)
        runs.append(([step(o) for o in obs], torch.get_rng_state()))  # 20 calls: 5 beyond num_calls
    (out_a, rng_a), (out_b, rng_b) = runs
    for a, b in zip(out_a, out_b):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    assert torch.equal(rng_a, rng_b)


@pytest.mark.parametrize("hidden_b", [(16, 16), (16, 8), ()])
def test_network_pair_matches_torch_whether_or_not_its_hidden_layers_stack(hidden_b):
    """Two MLPs with the same hidden layers run them as one stack; others (different widths, no
    hidden layer) run one after the other. Either way each output is its torch network's."""
    from spinrl.nets.actor_critic import mlp
    from spinrl.nets.fast_act import _numpy_mlp_pair

    torch.manual_seed(0)
    net_a = mlp([5, 16, 16, 3], torch.nn.Tanh)
    net_b = mlp([5, *hidden_b, 1], torch.nn.Tanh)
    pair = _numpy_mlp_pair(net_a, net_b)
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    for _ in range(2):  # the second call reuses the hidden layers' arrays
        out_a, out_b = pair(obs)
        with torch.no_grad():
            np.testing.assert_allclose(out_a, net_a(torch.as_tensor(obs)).numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(out_b, net_b(torch.as_tensor(obs)).numpy(), rtol=1e-5, atol=1e-6)
    first_a, first_b = pair(obs)
    kept_a, kept_b = first_a.copy(), first_b.copy()
    pair(obs * 2)  # outputs are new arrays: a later call does not overwrite them
    np.testing.assert_array_equal(first_a, kept_a)
    np.testing.assert_array_equal(first_b, kept_b)


@pytest.mark.parametrize("rows", [1, 3, 1000])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0])
def test_two_action_sampler_gives_the_general_samplers_results_bit_for_bit(rows, scale):
    """The two-action shortcut replaces reductions by elementwise operations on the two columns; the
    actions, log-probabilities and their dtypes must be exactly the general sampler's, ties included."""
    from spinrl.nets.fast_act import _sample_categorical, _sample_two_actions

    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = (rng.normal(size=(rows, 2)) * scale).astype(np.float32)
        logits[::3, 1] = logits[::3, 0]  # ties: probability 1/2 each
        u = rng.random((rows, 1)).astype(np.float32)
        a_general, logp_general = _sample_categorical(logits.copy(), u)
        a_two, logp_two = _sample_two_actions(logits.copy(), u)
        assert a_two.dtype == a_general.dtype and logp_two.dtype == logp_general.dtype
        assert a_two.tobytes() == a_general.tobytes()
        assert logp_two.tobytes() == logp_general.tobytes()

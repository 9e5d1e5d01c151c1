import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.common.errors import UserError
from spinrl.nets.actor_critic import (
    MLPActorCritic,
    activation_names,
    check_hidden_sizes,
    count_vars,
    resolve_activation,
)


def test_diagonal_gaussian_log_likelihood_matches_closed_form():
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)))
    obs = torch.randn(5, 3)
    act = torch.randn(5, 2)
    _, logp = ac.pi(obs, act)
    mu = ac.pi.mu_net(obs)
    log_std = ac.pi.log_std
    # log pi(a|s) = -1/2 (sum_i ((a_i - mu_i)/sigma_i)^2 + 2 log sigma_i) - k/2 log 2 pi
    k = 2
    expected = -0.5 * (((act - mu) / log_std.exp()) ** 2 + 2 * log_std).sum(-1) - k / 2 * math.log(
        2 * math.pi
    )
    torch.testing.assert_close(logp, expected)


def test_gaussian_sample_log_prob_agrees_with_distribution():
    torch.manual_seed(1)
    ac = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Box(-2, 2, (3,)))
    obs = torch.randn(6, 4)
    a, logp = ac.pi.sample(obs)
    _, logp_ref = ac.pi(obs, a)
    torch.testing.assert_close(logp, logp_ref)


def test_categorical_log_likelihood_matches_softmax():
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Discrete(3))
    obs = torch.randn(8, 4)
    act = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    _, logp = ac.pi(obs, act)
    logits = ac.pi.logits_net(obs)
    expected = logits.gather(1, act[:, None]).squeeze(1) - torch.logsumexp(logits, 1)
    torch.testing.assert_close(logp, expected)
    a, logp_sample = ac.pi.sample(obs)
    torch.testing.assert_close(logp_sample, ac.pi(obs, a)[1])


def test_step_shapes():
    ac = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)))
    a, v, logp = ac.step(torch.zeros(3, 4))
    assert a.shape == (3, 2) and v.shape == (3,) and logp.shape == (3,)
    ac_d = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Discrete(5))
    a, v, logp = ac_d.step(torch.zeros(3, 4))
    assert a.shape == (3,) and v.shape == (3,) and logp.shape == (3,)
    assert ac_d.act(torch.zeros(3, 4), deterministic=True).shape == (3,)


def test_deterministic_act_is_the_mean():
    ac = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)))
    obs = torch.randn(2, 4)
    torch.testing.assert_close(ac.act(obs, deterministic=True), ac.pi.mu_net(obs).detach())


@pytest.mark.parametrize("name", ["torch.nn.Tanh", "nn.ReLU", "Tanh", "elu"])
def test_activation_names(name):
    assert issubclass(resolve_activation(name), torch.nn.Module)


@pytest.mark.parametrize("name", ["os.system", "__import__('os')", "torch.nn.Linear", "Sequential"])
def test_activation_refuses_anything_else(name):
    with pytest.raises(UserError, match="not valid"):
        resolve_activation(name)


@pytest.mark.parametrize(
    "name, why",
    [
        ("torch.nn.Threshold", "cannot be built without arguments"),
        ("GLU", "changes the shape"),
        ("Softmax", "mixes the entries"),
        ("RReLU", "output is random"),
        (torch.nn.GLU, "changes the shape"),
    ],
)
def test_activations_that_cannot_sit_between_layers_say_why(name, why):
    torch.manual_seed(0)
    with pytest.raises(UserError, match=why) as info:
        MLPActorCritic(spaces.Box(-1, 1, (2,)), spaces.Discrete(2), activation=name)
    offered = str(info.value).split("use one of torch.nn's ")[1].split(", ")
    assert "Tanh" in offered and not {"Threshold", "GLU", "Softmax", "RReLU"} & set(offered)
    # The probe leaves torch's random numbers where they were (RReLU draws some).
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_every_offered_activation_builds_a_working_network():
    obs = torch.randn(5, 3)
    for name in activation_names():
        ac = MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), (8,), activation=name)
        a, v, logp = ac.step(obs)
        assert a.shape == (5, 2) and v.shape == (5,) and logp.shape == (5,), name


# "64" (a string, e.g. --hid "'64'") once built layers of 6 and 4 units, one per character.
@pytest.mark.parametrize("bad", [[0], [-4, 4], "big", [1.5], "64", ["64"], b"64"])
def test_hidden_sizes_validation(bad):
    with pytest.raises(UserError, match="hidden_sizes"):
        MLPActorCritic(spaces.Box(-1, 1, (2,)), spaces.Discrete(2), hidden_sizes=bad)
    with pytest.raises(UserError, match="hidden_sizes"):
        check_hidden_sizes(bad)


def test_unsupported_action_space_is_refused():
    with pytest.raises(UserError, match="MultiDiscrete"):
        MLPActorCritic(spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([2, 3]))


def test_log_std_is_state_independent_parameter():
    ac = MLPActorCritic(spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (3,)))
    assert isinstance(ac.pi.log_std, torch.nn.Parameter)
    np.testing.assert_allclose(ac.pi.log_std.detach().numpy(), -0.5)


def test_count_vars_counts_every_weight_and_bias():
    ac = MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), hidden_sizes=(4,))
    assert count_vars(ac.pi) == (3 * 4 + 4) + (4 * 2 + 2)
    assert count_vars(ac.v) == (3 * 4 + 4) + (4 * 1 + 1)

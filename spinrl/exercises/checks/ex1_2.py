"""Checker for exercise 1.2: PPO's actor-critic networks.

Builds each network on small made-up sizes, then checks what PPO relies on: output shapes, log-probs equal
to those of ``torch.distributions`` for the same parameters, a state-independent learnable ``log_std``,
and gradients that reach every parameter.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn
from torch.distributions import Categorical, Normal

from spinrl.exercises.checking import CheckFailed, Report, call, close, expect_shape, get_function

OBS_DIM, N_ACTIONS, ACT_DIM, BATCH, HIDDEN = 5, 3, 2, 7, [16, 16]


def _check_mlp(module: ModuleType, report: Report) -> None:
    mlp = get_function(module, "mlp")
    net = call(mlp, [OBS_DIM, *HIDDEN, 4], nn.Tanh)
    if not isinstance(net, nn.Module):
        raise CheckFailed(f"mlp should return an nn.Module (e.g. nn.Sequential), got {type(net).__name__}.")
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    expected = [(OBS_DIM, 16), (16, 16), (16, 4)]
    if sizes != expected:
        raise CheckFailed(f"mlp([5, 16, 16, 4]) has Linear layers {sizes}, expected {expected}.")
    n_tanh = sum(isinstance(m, nn.Tanh) for m in net.modules())
    if n_tanh != 2:
        raise CheckFailed(
            f"mlp([5, 16, 16, 4], nn.Tanh) has {n_tanh} Tanh layers, expected 2: one after each hidden layer and "
            "none after the output (an output Tanh would squash logits and means into [-1, 1])."
        )
    out = call(net, torch.randn(BATCH, OBS_DIM))
    expect_shape(out, (BATCH, 4), "mlp output")
    report("mlp: layer sizes, activations and output shape")


def _check_categorical(module: ModuleType, report: Report) -> None:
    cls = get_function(module, "MLPCategoricalActor")
    actor = call(cls, OBS_DIM, N_ACTIONS, HIDDEN, nn.Tanh)
    obs = torch.randn(BATCH, OBS_DIM)
    act = torch.randint(N_ACTIONS, (BATCH,))
    pi, logp = call(actor, obs, act)
    if not isinstance(pi, Categorical):
        raise CheckFailed(f"MLPCategoricalActor should return a torch Categorical, got {type(pi).__name__}.")
    expect_shape(pi.logits, (BATCH, N_ACTIONS), "the categorical logits")
    expect_shape(logp, (BATCH,), "the categorical log-prob", "One log-prob per observation in the batch.")
    ref = Categorical(logits=pi.logits).log_prob(act)
    if not close(logp, ref):
        raise CheckFailed(
            "the categorical log-probs differ from Categorical(logits).log_prob(act): take log_prob of the "
            "actions themselves (not of their one-hot codes, not the log of the logits)."
        )
    pi_none, logp_none = call(actor, obs)
    if logp_none is not None:
        raise CheckFailed("forward(obs) without actions should return (pi, None).")
    logp.sum().backward()
    if any(p.grad is None for p in actor.parameters()):
        raise CheckFailed("some actor parameters got no gradient from the log-prob: is the network used?")
    report("categorical actor: distribution, log-probs, gradients")


def _check_gaussian(module: ModuleType, report: Report) -> None:
    cls = get_function(module, "MLPGaussianActor")
    actor = call(cls, OBS_DIM, ACT_DIM, HIDDEN, nn.Tanh)
    log_std = getattr(actor, "log_std", None)
    if not isinstance(log_std, nn.Parameter):
        raise CheckFailed(
            "MLPGaussianActor needs `self.log_std = nn.Parameter(...)`: a plain tensor is not learned, and a "
            "network output would make σ depend on the state (PPO's Gaussian uses a state-independent σ)."
        )
    expect_shape(
        log_std, (ACT_DIM,), "log_std", "One log σ per action dimension, shared by all observations."
    )
    if not any(p is log_std for p in actor.parameters()):
        raise CheckFailed("log_std is not among actor.parameters(), so the optimiser would never update it.")
    if not close(log_std, torch.full((ACT_DIM,), -0.5)):
        raise CheckFailed(f"initialise log_std to -0.5 (σ ≈ 0.61), got {log_std.detach().tolist()}.")

    obs = torch.randn(BATCH, OBS_DIM)
    act = torch.randn(BATCH, ACT_DIM)
    pi, logp = call(actor, obs, act)
    if not isinstance(pi, Normal):
        raise CheckFailed(f"MLPGaussianActor should return a torch Normal, got {type(pi).__name__}.")
    expect_shape(pi.mean, (BATCH, ACT_DIM), "the Gaussian mean")
    if not close(pi.stddev, torch.exp(log_std).expand(BATCH, ACT_DIM)):
        if close(pi.stddev, log_std.expand(BATCH, ACT_DIM)):
            raise CheckFailed("you passed log_std as the scale: Normal takes σ = exp(log_std).")
        raise CheckFailed("the Gaussian's standard deviation should be exp(log_std) for every observation.")
    pi2, _ = call(actor, torch.randn(BATCH, OBS_DIM) * 3)
    if not close(pi2.stddev, pi.stddev):
        raise CheckFailed("σ changes with the observation: it must come from log_std alone, not the network.")
    if logp is not None and tuple(logp.shape) == (BATCH, ACT_DIM):
        raise CheckFailed(
            "the log-prob has shape (batch, act_dim): sum over the action dimension (dim=-1); a diagonal "
            "Gaussian's dimensions are independent, so their log-densities add up."
        )
    expect_shape(logp, (BATCH,), "the Gaussian log-prob")
    ref = Normal(pi.mean, torch.exp(log_std)).log_prob(act).sum(-1)
    if not close(logp, ref, atol=1e-4):
        raise CheckFailed(
            "the Gaussian log-probs differ from Normal(mu, exp(log_std)).log_prob(act).sum(-1)."
        )
    logp.sum().backward()
    if log_std.grad is None or any(p.grad is None for p in actor.parameters()):
        raise CheckFailed("a parameter (log_std or the mean network) got no gradient from the log-prob.")
    report("Gaussian actor: learnable state-independent log_std, distribution, log-probs, gradients")


def _check_critic(module: ModuleType, report: Report) -> None:
    cls = get_function(module, "MLPCritic")
    critic = call(cls, OBS_DIM, HIDDEN, nn.Tanh)
    v = call(critic, torch.randn(BATCH, OBS_DIM))
    if isinstance(v, torch.Tensor) and tuple(v.shape) == (BATCH, 1):
        raise CheckFailed(
            "the critic returns shape (batch, 1): squeeze the last dimension. Otherwise (v - ret) with ret of "
            "shape (batch,) broadcasts to (batch, batch) and the value loss is silently wrong."
        )
    expect_shape(v, (BATCH,), "the critic output")
    v.sum().backward()
    if any(p.grad is None for p in critic.parameters()):
        raise CheckFailed("some critic parameters got no gradient.")
    report("critic: value of shape (batch,)")


def check(module: ModuleType, report: Report) -> None:
    torch.manual_seed(0)
    _check_mlp(module, report)
    _check_categorical(module, report)
    _check_gaussian(module, report)
    _check_critic(module, report)

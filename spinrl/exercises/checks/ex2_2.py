"""Checker for exercise 2.2: the DDPG update with planted bugs.

Each function of the reader's file is run on a small actor-critic whose target copy deliberately differs
from the online one, and is compared with the equations. Failures describe the symptom a practitioner
would see, and why it matters.
"""

from __future__ import annotations

import copy
from types import ModuleType

import torch
from torch import nn

from spinrl.exercises.checking import CheckFailed, Report, as_tensor, call, close, expect_shape, get_function

OBS_DIM, ACT_DIM, BATCH = 4, 2, 8


class ActorCritic(nn.Module):
    """μ(s) = tanh(W s) and Q(s, a) = small MLP on [s, a]; enough to exercise every line of an update."""

    def __init__(self) -> None:
        super().__init__()
        self.pi_net = nn.Linear(OBS_DIM, ACT_DIM)
        self.q = _Critic()

    def pi(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pi_net(obs))


class _Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(OBS_DIM + ACT_DIM, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


def _make_pair() -> tuple[ActorCritic, ActorCritic]:
    """An online network and a target copy that has drifted from it, as after some training."""
    ac = ActorCritic()
    ac_targ = copy.deepcopy(ac)
    with torch.no_grad():
        for p in ac_targ.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return ac, ac_targ


def _make_batch() -> dict[str, torch.Tensor]:
    return {
        "obs": torch.randn(BATCH, OBS_DIM),
        "act": torch.rand(BATCH, ACT_DIM) * 2 - 1,
        "rew": torch.randn(BATCH),
        "obs2": torch.randn(BATCH, OBS_DIM),
        # Transition 1 ended in a terminal state, transitions 2 and 5 were cut by the time limit.
        "terminated": torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        "truncated": torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
    }


def _check_target(module: ModuleType, report: Report) -> None:
    compute_target = get_function(module, "compute_target")
    ac, ac_targ = _make_pair()
    batch, gamma = _make_batch(), 0.9
    y = as_tensor(call(compute_target, batch, ac_targ, gamma), "the target")
    expect_shape(y, (BATCH,), "the target")
    with torch.no_grad():
        q_next = ac_targ.q(batch["obs2"], ac_targ.pi(batch["obs2"]))
        expected = batch["rew"] + gamma * (1 - batch["terminated"]) * q_next
        masked_timeouts = (
            batch["rew"] + gamma * (1 - torch.clamp(batch["terminated"] + batch["truncated"], max=1)) * q_next
        )
    if not close(y, expected):
        if close(y, masked_timeouts):
            raise CheckFailed(
                "symptom: the targets of transitions cut by the time limit ignore the next state's value. "
                "A truncation is not a terminal state: the episode would have gone on, so the critic learns "
                "that states near the time limit are worth nothing. Mask with (1 - terminated) only."
            )
        raise CheckFailed("compute_target does not match y = r + γ (1 - terminated) Q_targ(s', μ_targ(s')).")
    report("the target bootstraps through truncations and stops at terminal states")
    if y.requires_grad:
        raise CheckFailed(
            "symptom: the target carries a graph, so every critic update also backpropagates into the target "
            "networks and piles up gradients there; here that only wastes work, but with a target that reads "
            "trained parameters (no target network, SAC's policy or alpha, a shared encoder) the critic would "
            "chase its own target. Compute it under `with torch.no_grad():`."
        )
    report("the target is a constant for the critic loss (no graph)")


def _check_losses(module: ModuleType, report: Report) -> None:
    ac, ac_targ = _make_pair()
    batch = _make_batch()
    loss_pi = as_tensor(call(get_function(module, "compute_loss_pi"), batch, ac), "loss_pi")
    with torch.no_grad():
        expected_pi = -ac.q(batch["obs"], ac.pi(batch["obs"])).mean()
    if not close(loss_pi, expected_pi):
        raise CheckFailed("compute_loss_pi should be -mean Q(s, μ(s)): the actor climbs the critic.")
    loss_q = as_tensor(call(get_function(module, "compute_loss_q"), batch, ac, ac_targ, 0.9), "loss_q")
    with torch.no_grad():
        q_next = ac_targ.q(batch["obs2"], ac_targ.pi(batch["obs2"]))
        y = batch["rew"] + 0.9 * (1 - batch["terminated"]) * q_next
        expected_q = ((ac.q(batch["obs"], batch["act"]) - y) ** 2).mean()
    if not close(loss_q, expected_q):
        raise CheckFailed("compute_loss_q should be mean (Q(s, a) - y)^2.")
    report("critic and actor losses")


def _check_polyak(module: ModuleType, report: Report) -> None:
    polyak_update = get_function(module, "polyak_update")
    ac, ac_targ = _make_pair()
    before = [p.detach().clone() for p in ac_targ.parameters()]
    online = [p.detach().clone() for p in ac.parameters()]
    rho = 0.9
    call(polyak_update, ac, ac_targ, rho)
    after = list(ac_targ.parameters())
    if all(close(a, rho * b + (1 - rho) * o) for a, b, o in zip(after, before, online, strict=True)):
        report("Polyak averaging: θ_targ <- ρ θ_targ + (1 - ρ) θ")
        return
    if all(close(a, (1 - rho) * b + rho * o) for a, b, o in zip(after, before, online, strict=True)):
        raise CheckFailed(
            "symptom: with polyak = 0.9 the target network jumped 90% of the way to the online network in one "
            "update. The coefficients are swapped: θ_targ <- ρ θ_targ + (1 - ρ) θ keeps ρ of the OLD target, "
            "so the target moves slowly and the bootstrap stays stable."
        )
    raise CheckFailed("polyak_update should set θ_targ <- ρ θ_targ + (1 - ρ) θ for every parameter.")


def _check_update(module: ModuleType, report: Report) -> None:
    update = get_function(module, "update")
    ac, ac_targ = _make_pair()
    pi_before = [p.detach().clone() for p in ac.pi_net.parameters()]
    q_before = [p.detach().clone() for p in ac.q.parameters()]
    q_opt = torch.optim.SGD(ac.q.parameters(), lr=0.1)
    pi_opt = torch.optim.SGD(ac.pi_net.parameters(), lr=0.1)
    call(update, _make_batch(), ac, ac_targ, q_opt, pi_opt, 0.9, 0.995)
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in ac_targ.parameters()):
        raise CheckFailed("after update(), the target networks hold gradients: the target was not detached.")
    if all(close(a, b) for a, b in zip(ac.q.parameters(), q_before, strict=True)):
        raise CheckFailed("update() did not change the critic.")
    if all(close(a, b) for a, b in zip(ac.pi_net.parameters(), pi_before, strict=True)):
        raise CheckFailed("update() did not change the actor.")
    report("a full update changes actor and critic and leaves no gradients in the targets")


def check(module: ModuleType, report: Report) -> None:
    torch.manual_seed(0)
    _check_target(module, report)
    _check_losses(module, report)
    _check_polyak(module, report)
    _check_update(module, report)

"""Exercise 2.2: find the bugs in a DDPG update.

The functions below make one DDPG update (Lillicrap et al. 2016; docs: algorithms/ddpg). The code runs and,
on some tasks, even learns a little, but it contains THREE bugs of the kind that cost days in real projects.
Nothing needs to be added; each bug is fixed by changing one or two lines. Read each function next to the
equations, fix what is wrong, and check your file with

    spinrl exercise 2.2 --file <this file>

The checker names the symptom it sees, not the line. The equations:

    y(r, s', d) = r + γ (1 - d) Q_targ(s', μ_targ(s'))          d = 1 only for a real terminal state
    L_Q = mean (Q(s, a) - y)^2                                  y is a constant for this loss
    L_μ = -mean Q(s, μ(s))
    θ_targ <- ρ θ_targ + (1 - ρ) θ                              ρ = polyak, close to 1 (e.g. 0.995)

Interfaces: ``ac.pi(obs) -> act``, ``ac.q(obs, act) -> (batch,)``; ``ac_targ`` is a copy of ``ac``.
``batch`` is a dict of tensors: obs, act, rew, obs2, terminated, truncated (flags as 0./1.).
"""

from __future__ import annotations

import torch
from torch import nn


def compute_target(batch: dict[str, torch.Tensor], ac_targ: nn.Module, gamma: float) -> torch.Tensor:
    """y = r + γ (1 - d) Q_targ(s', μ_targ(s')), shape (batch,)."""
    done = torch.clamp(batch["terminated"] + batch["truncated"], max=1.0)
    q_pi_targ = ac_targ.q(batch["obs2"], ac_targ.pi(batch["obs2"]))
    return batch["rew"] + gamma * (1 - done) * q_pi_targ


def compute_loss_q(
    batch: dict[str, torch.Tensor], ac: nn.Module, ac_targ: nn.Module, gamma: float
) -> torch.Tensor:
    """Mean squared Bellman error of the critic."""
    q = ac.q(batch["obs"], batch["act"])
    return ((q - compute_target(batch, ac_targ, gamma)) ** 2).mean()


def compute_loss_pi(batch: dict[str, torch.Tensor], ac: nn.Module) -> torch.Tensor:
    """The actor climbs the critic: minimise -Q(s, μ(s))."""
    return -ac.q(batch["obs"], ac.pi(batch["obs"])).mean()


def polyak_update(ac: nn.Module, ac_targ: nn.Module, polyak: float) -> None:
    """Move each target parameter a small step towards the online one."""
    with torch.no_grad():
        for p, p_targ in zip(ac.parameters(), ac_targ.parameters(), strict=True):
            p_targ.mul_(1 - polyak)
            p_targ.add_(polyak * p)


def update(
    batch: dict[str, torch.Tensor],
    ac: nn.Module,
    ac_targ: nn.Module,
    q_optimizer: torch.optim.Optimizer,
    pi_optimizer: torch.optim.Optimizer,
    gamma: float = 0.99,
    polyak: float = 0.995,
) -> dict[str, float]:
    """One gradient step on the critic, one on the actor, then the target networks follow."""
    q_optimizer.zero_grad()
    loss_q = compute_loss_q(batch, ac, ac_targ, gamma)
    loss_q.backward()
    q_optimizer.step()

    # Freeze the critic while the actor steps: its gradient w.r.t. the critic's weights is not wanted.
    for p in ac.q.parameters():
        p.requires_grad_(False)
    pi_optimizer.zero_grad()
    loss_pi = compute_loss_pi(batch, ac)
    loss_pi.backward()
    pi_optimizer.step()
    for p in ac.q.parameters():
        p.requires_grad_(True)

    polyak_update(ac, ac_targ, polyak)
    return {"loss_q": loss_q.item(), "loss_pi": loss_pi.item()}

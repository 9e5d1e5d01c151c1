"""Exercise 2.2, reference solution: the DDPG update with its three bugs fixed (docs: exercises/2.2)."""

from __future__ import annotations

import torch
from torch import nn


def compute_target(batch: dict[str, torch.Tensor], ac_targ: nn.Module, gamma: float) -> torch.Tensor:
    """y = r + γ (1 - d) Q_targ(s', μ_targ(s')), shape (batch,)."""
    # Fix 2: the target is a constant for the critic loss, so build it without a graph.
    with torch.no_grad():
        q_pi_targ = ac_targ.q(batch["obs2"], ac_targ.pi(batch["obs2"]))
        # Fix 1: only a real terminal state cuts the bootstrap; a time-limit truncation still has a future.
        return batch["rew"] + gamma * (1 - batch["terminated"]) * q_pi_targ


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
            # Fix 3: keep ρ of the old target and take (1 - ρ) of the online weights.
            p_targ.mul_(polyak)
            p_targ.add_((1 - polyak) * p)


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

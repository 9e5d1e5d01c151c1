"""Exercise 2.1, reference solution: the TD3 target (docs: exercises/2.1)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def td3_target(
    rew: torch.Tensor,
    obs2: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    actor_targ: Callable[[torch.Tensor], torch.Tensor],
    q1_targ: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    q2_targ: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gamma: float = 0.99,
    target_noise: float = 0.2,
    noise_clip: float = 0.5,
    act_limit: float = 1.0,
) -> torch.Tensor:
    """The TD3 target y of shape (batch,). rew, terminated, truncated have shape (batch,) (flags as 0./1.)."""
    # The target is a constant for the critic loss: build it without a graph.
    with torch.no_grad():
        pi_targ = actor_targ(obs2)
        # Target policy smoothing: clipped noise, then back inside the action bounds.
        epsilon = torch.clamp(torch.randn_like(pi_targ) * target_noise, -noise_clip, noise_clip)
        a2 = torch.clamp(pi_targ + epsilon, -act_limit, act_limit)
        # Clipped double-Q: both critics judge the SAME smoothed action; the smaller value fights overestimation.
        q_pi_targ = torch.min(q1_targ(obs2, a2), q2_targ(obs2, a2))
        # Only a real terminal state cuts the bootstrap; `truncated` is deliberately unused.
        return rew + gamma * (1 - terminated) * q_pi_targ

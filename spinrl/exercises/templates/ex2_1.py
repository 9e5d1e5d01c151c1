"""Exercise 2.1: the TD3 target.

TD3 (Fujimoto et al. 2018) fits both critics to one target built from the target networks
(docs: algorithms/td3):

    a'(s') = clip( μ_targ(s') + clip(ε, -c, c), -a_max, a_max ),      ε ~ N(0, σ)      (target policy smoothing)
    y      = r + γ (1 - d) min( Q1_targ(s', a'), Q2_targ(s', a') )                    (clipped double-Q)

with σ = ``target_noise``, c = ``noise_clip``, a_max = ``act_limit``. d must be 1 only for a real terminal
state: a transition cut by a time limit (``truncated``) still has a future worth bootstrapping. The target
is a constant for the critic update: no gradient may flow through it.

Interfaces: ``actor_targ(obs) -> act`` of shape (batch, act_dim); ``q1_targ(obs, act) -> (batch,)``.
Fill in the TODO, then check your file with

    spinrl exercise 2.1 --file <this file>
"""

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
    # TODO: smooth the target action, take the smaller of the two target critics, mask terminal states.
    raise NotImplementedError("TODO: td3_target")
